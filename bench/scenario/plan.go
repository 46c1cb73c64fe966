package scenario

import (
	"context"
	"fmt"
	"math/rand/v2"

	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/bench/load"
)

// createRooms creates every room with its members through the HTTP API,
// the first member as owner, and returns the rooms' ids.
func createRooms(ctx context.Context, api *load.API, scenario string, users []string, members [][]int) ([]string, error) {
	ids := make([]string, len(members))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for r, m := range members {
		if len(m) == 0 {
			return nil, fmt.Errorf("room %d has no members", r)
		}
		g.Go(func() error {
			token, err := api.Token(ctx, users[m[0]])
			if err != nil {
				return err
			}
			names := make([]string, len(m)-1)
			for i, c := range m[1:] {
				names[i] = users[c]
			}
			first := names[:min(len(names), load.MaxMembersPerCall)]
			if ids[r], err = api.CreateRoom(ctx, token, fmt.Sprintf("%s %d", scenario, r), first); err != nil {
				return err
			}
			for rest := names[len(first):]; len(rest) > 0; rest = rest[min(len(rest), load.MaxMembersPerCall):] {
				if err := api.AddMembers(ctx, token, ids[r], rest[:min(len(rest), load.MaxMembersPerCall)]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return ids, g.Wait()
}

// Clients dial from loopback addresses 127.0.0.2 on, this many per
// address: far below the ~28,000 ephemeral ports each address has, so
// reconnects find free ports while old ones wait in TIME_WAIT.
const clientsPerSource = 5000

func sourceAddr(client int) string {
	k := client / clientsPerSource
	return fmt.Sprintf("127.0.%d.%d", k/250, 2+k%250)
}

// workers returns how many workers env gives n clients.
func (env Env) workers(n int) int {
	if env.Workers > 0 {
		return env.Workers
	}
	return max(1, (n+env.PerWorker-1)/env.PerWorker)
}

// Clients go round robin to workers (client i to worker i mod W, as its
// local client i/W), so every room's members are spread over workers and
// each room's deliveries are verified across processes.
func workerOf(client, workers int) (w, local int) { return client % workers, client / workers }

// workerPlans splits d's clients over workers.
func workerPlans(env Env, d Design, users, rooms []string) []load.Plan {
	plans := make([]load.Plan, env.workers(len(d.Clients)))
	for w := range plans {
		plans[w] = load.Plan{
			Worker:          w,
			URLs:            env.URLs,
			API:             env.API,
			BodySize:        env.BodySize,
			EventBuffer:     env.EventBuffer,
			DialConcurrency: env.DialConcurrency,
			Fanout:          d.Fanout,
		}
	}
	for i, c := range d.Clients {
		w, _ := workerOf(i, len(plans))
		cp := load.ClientPlan{User: users[i], URL: i % len(env.URLs), Source: sourceAddr(i)}
		for _, r := range c.Rooms {
			cp.Rooms = append(cp.Rooms, rooms[r])
		}
		plans[w].Clients = append(plans[w].Clients, cp)
	}
	return plans
}

// splitTraffic gives each worker its share of a step: the slots of its
// clients, and the rates and message count in proportion to them.
func splitTraffic(st Step, workers int, rooms []string, maxInFlight int) []load.Traffic {
	out := make([]load.Traffic, workers)
	for w := range out {
		out[w] = load.Traffic{Duration: st.Duration, DisruptAt: st.DisruptAt, MaxInFlight: maxInFlight, RetryFor: st.RetryFor}
	}
	slot := func(s Slot) (int, load.Slot) {
		w, i := workerOf(s.Client, workers)
		return w, load.Slot{Client: i, Room: rooms[s.Room]}
	}
	for _, s := range st.Senders {
		w, ls := slot(s)
		out[w].Senders = append(out[w].Senders, ls)
	}
	for _, s := range st.Readers {
		w, ls := slot(s)
		out[w].Readers = append(out[w].Readers, ls)
	}
	for w := range out {
		t := &out[w]
		if len(st.Senders) > 0 {
			t.Rate = st.Rate * float64(len(t.Senders)) / float64(len(st.Senders))
		}
		if len(st.Readers) > 0 {
			t.HistoryRate = st.HistoryRate * float64(len(t.Readers)) / float64(len(st.Readers))
		}
	}
	if st.Messages > 0 {
		// Message j goes to sender j mod n; count each worker's.
		for j := range st.Messages {
			w, _ := workerOf(st.Senders[j%len(st.Senders)].Client, workers)
			out[w].Messages++
		}
		for w := range out {
			if out[w].Messages == 0 { // 0 would mean no limit
				out[w].Senders, out[w].Rate = nil, 0
			}
		}
	}
	return out
}

// shuffled returns slots in a fixed pseudo-random order, so consecutive
// sends go to different rooms (and partitions) rather than one room's
// members in a row.
func shuffled(slots []Slot) []Slot {
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	return slots
}
