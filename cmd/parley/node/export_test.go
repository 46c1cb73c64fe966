package node

import "github.com/nats-io/nats.go"

// BusConn is the node's NATS connection, for tests that cut it to kill a
// role without a clean stop.
func (n *Node) BusConn() *nats.Conn { return n.nc }
