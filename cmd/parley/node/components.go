package node

import (
	"cmp"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/archiver"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/history"
	"github.com/parley-chat/parley/internal/presence"
	"github.com/parley-chat/parley/internal/services/accounts"
	"github.com/parley-chat/parley/processor"
	"github.com/parley-chat/parley/processor/notify"
)

// component is one running part of a role. The node runs it until Close
// (run), asks it whether it is ready (/readyz), collects its metrics
// (/metrics), and stops it once every run has returned (stop). Each field
// may be nil.
type component struct {
	name    string
	run     func(ctx context.Context) error
	ready   func() error
	metrics prometheus.Collector
	stop    func()
}

// archiverRole: the history service, the accounts service and the
// archiver itself, on the archiver's connection.
func (n *Node) archiverRole(c conn) ([]component, error) {
	hist, err := history.Serve(c.nc, n.st, n.log)
	if err != nil {
		return nil, err
	}
	acc, err := accounts.Serve(c.nc, n.st, n.log, n.accountsConfig())
	if err != nil {
		_ = hist.Stop()
		return nil, err
	}
	n.Archiver = archiver.New(c.js, n.st, n.log.Named("archiver"), n.cfg.Archiver)
	return []component{
		{name: "history service", stop: func() { _ = hist.Stop() }},
		{name: "accounts service", stop: func() { _ = acc.Stop() }},
		{name: "archiver", run: n.Archiver.Run, ready: n.Archiver.Ready, metrics: n.Archiver},
	}, nil
}

// processorRole: the media worker, the sequencer, the notifier and the
// presence keeper, on the processor's connection.
func (n *Node) processorRole(ctx, runCtx context.Context, c conn) ([]component, error) {
	pc := n.cfg.Processor
	pc.Partitions = n.partitions
	pc.Replicas = cmp.Or(pc.Replicas, n.cfg.Streams.Replicas)
	attachments, err := n.startMediaWork(ctx, runCtx, c)
	if err != nil {
		return nil, err
	}
	pc.Attachments = attachments
	n.Processor = processor.New(c.nc, c.js, n.st, n.log.Named("processor"), pc)
	n.Notifier = notify.New(c.js, c.nc, n.st, presence.Directory{NC: c.nc}, n.log.Named("notifier"), n.cfg.Notify)
	keeper, err := presence.NewKeeper(ctx, c.nc, n.log.Named("presence"))
	if err != nil {
		return nil, err
	}
	return []component{
		{name: "processor", run: n.Processor.Run, ready: n.Processor.Ready, metrics: n.Processor},
		{name: "notifier", run: n.Notifier.Run, ready: n.Notifier.Ready, metrics: n.Notifier},
		{name: "presence keeper", run: keeper.Run},
	}, nil
}

// gatewayRole: the gateway, with the revocations it follows and the media
// routes it mounts, listening on HTTPAddr.
func (n *Node) gatewayRole(ctx context.Context, c conn) ([]component, error) {
	gc := n.cfg.Gateway
	gc.Sends.Partitions = n.partitions
	n.gw = gateway.New(c.nc, c.js, n.st, n.signer, n.log.Named("gateway"), gc)
	var err error
	if n.revocations, err = accounts.WatchRevocations(ctx, n.gwRevokedKV, n.gw.CloseLogin); err != nil {
		return nil, err
	}
	n.gw.UseRevocations(n.revocations)
	if err := n.mountMedia(ctx, c, n.tokenKey); err != nil {
		return nil, err
	}
	if err := n.gw.Start(); err != nil {
		return nil, err
	}
	if n.ln, err = gateway.Listen(n.cfg.HTTPAddr, n.cfg.ReusePort); err != nil {
		return nil, err
	}
	n.log.Info("gateway listening", zap.String("addr", n.ln.Addr().String()))
	return []component{{
		name:    "gateway",
		run:     func(context.Context) error { return n.gw.Serve(n.ln) },
		ready:   n.gatewayReady,
		metrics: n.gw,
		stop:    n.revocations.Stop,
	}}, nil
}

func (n *Node) gatewayReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.gw.Ready(ctx)
}
