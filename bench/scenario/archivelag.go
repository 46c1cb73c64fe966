package scenario

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/internal/bus"
)

// archiverDurable is the archiver's consumer of CHAT_MSG (archiver.Config's
// default, which cluster.sh keeps).
const archiverDurable = "archiver"

// LagPoint is the archiver's backlog at one moment: CHAT_MSG messages it
// has not yet been given or not yet acked; -1 when the server did not
// answer.
type LagPoint struct {
	At      time.Time `json:"at"`
	Pending int64     `json:"pending"`
}

// watchArchiver polls the archiver's backlog once a second until stop is
// called, which returns the points. Delivery to clients does not wait for
// the archiver, so this is how a fault's effect on archiving shows.
func watchArchiver(ctx context.Context, natsURL string) (stop func() []LagPoint) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []LagPoint, 1)
	go func() {
		var pts []LagPoint
		defer func() { done <- pts }()
		nc, err := nats.Connect(natsURL, nats.Name("parley-bench-archiver-lag"), nats.MaxReconnects(-1))
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		for {
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			pt := LagPoint{At: time.Now(), Pending: -1}
			if c, err := js.Consumer(qctx, bus.StreamMsg, archiverDurable); err == nil {
				info := c.CachedInfo()
				pt.Pending = int64(info.NumPending) + int64(info.NumAckPending)
			}
			qcancel()
			pts = append(pts, pt)
			if !load.Sleep(ctx, time.Until(pt.At.Add(time.Second))) {
				return
			}
		}
	}()
	return func() []LagPoint {
		cancel()
		return <-done
	}
}

// archiverCatchUp sums up the backlog around a fault: its peak from the
// fault on, and how long after the fault was lifted it first came back
// within the highest backlog seen before the fault, or within slack if
// higher (ok false: not within the points, or no points before the fault).
func archiverCatchUp(pts []LagPoint, run FaultRun, slack int64) (peak int64, after time.Duration, ok bool) {
	base := int64(-1)
	for _, p := range pts {
		if p.At.Before(run.Start) {
			base = max(base, p.Pending)
		} else {
			peak = max(peak, p.Pending)
		}
	}
	if base < 0 {
		return peak, 0, false
	}
	base = max(base, slack)
	for _, p := range pts {
		if !p.At.Before(run.Lifted) && p.Pending >= 0 && p.Pending <= base {
			return peak, p.At.Sub(run.Lifted), true
		}
	}
	return peak, 0, false
}
