package transport

import (
	"strconv"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/parley-chat/parley/gateway/reactor"
)

// closeCodes are the close codes counted one by one; others count as
// "other".
var closeCodes = [...]ws.StatusCode{
	ws.StatusNormalClosure, ws.StatusGoingAway, ws.StatusProtocolError, ws.StatusUnsupportedData,
	ws.StatusNoStatusRcvd, ws.StatusAbnormalClosure, ws.StatusInvalidFramePayloadData,
	ws.StatusPolicyViolation, ws.StatusMessageTooBig, ws.StatusInternalServerError,
}

// Closes counts the connections that closed, by the close code that ended
// each (the first decided, by either side), and the slow consumers among
// them.
type Closes struct {
	byCode [len(closeCodes) + 1]atomic.Uint64 // the last: other codes
	slow   atomic.Uint64
}

// closed counts one close; it is cheap enough to run under a
// connection's lock.
func (c *Closes) closed(code ws.StatusCode, reason string) {
	i := len(closeCodes)
	for j, k := range closeCodes {
		if k == code {
			i = j
			break
		}
	}
	c.byCode[i].Add(1)
	if reason == reactor.ReasonSlowConsumer {
		c.slow.Add(1)
	}
}

// Each calls f with each close code ("other" for the rest) and its count.
func (c *Closes) Each(f func(code string, n uint64)) {
	for i, k := range closeCodes {
		f(strconv.Itoa(int(k)), c.byCode[i].Load())
	}
	f("other", c.byCode[len(closeCodes)].Load())
}

// SlowConsumers counts the connections closed for not reading fast enough.
func (c *Closes) SlowConsumers() uint64 { return c.slow.Load() }
