package scenario

import (
	"fmt"
	"time"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/verify"
)

// faultLatency is a fault step's send→deliver by when its messages were
// sent (load.SeriesBySend): before the fault, while it lasted, and after
// it was lifted; and the time to recover.
type faultLatency struct {
	Before, During, After metrics.Snapshot
	// Threshold is the pre-fault value p99 must get back under: twice the
	// p99 before the fault, or the highest p99 of a smoothing window before
	// it if higher, so that the noise of a shared machine does not read as
	// a failure to recover.
	Threshold time.Duration
	// Recovered is how long after the reference time the last slow second
	// ended (0: none); Unrecovered says it was within the step's last
	// recoveryTail seconds.
	Recovered   time.Duration
	Unrecovered bool
}

// The p99 of a second is that of the messages sent in the smoothing
// window around it (the second before, itself, the second after): on a
// shared machine single seconds are noisy. recoveryTail is how many
// seconds at the end of a step must be back under the threshold for a
// fault to count as recovered from.
const (
	smoothing    = 1
	recoveryTail = 3
)

// faultLatencies measures a fault step: loadStart..loadEnd its load, run
// its fault, ref the time recovery is counted from.
func faultLatencies(s *metrics.Series, loadStart, loadEnd time.Time, run FaultRun, ref time.Time) faultLatency {
	from, at, lifted, end := loadStart.Unix(), run.Start.Unix(), run.Lifted.Unix(), loadEnd.Unix()
	fl := faultLatency{
		Before: s.Window(from, at),
		During: s.Window(at, lifted+1),
		After:  s.Window(lifted+1, end+1),
	}
	p99 := func(sec, lo, hi int64) metrics.Snapshot {
		return s.Window(max(sec-smoothing, lo), min(sec+smoothing+1, hi))
	}
	// The first second is partly before the load; windows stay before the fault.
	fl.Threshold = 2 * fl.Before.P99
	for sec := from + 1; sec < at; sec++ {
		fl.Threshold = max(fl.Threshold, p99(sec, from+1, at).P99)
	}
	last := int64(-1)
	for sec := ref.Unix(); sec <= end; sec++ {
		if w := p99(sec, ref.Unix(), end+1); w.Count > 0 && w.P99 > fl.Threshold {
			last = sec
		}
	}
	if last >= 0 {
		// The window reaches smoothing seconds past the last bad one.
		fl.Recovered = max(time.Unix(last+1-smoothing, 0).Sub(ref), 0)
		fl.Unrecovered = last+recoveryTail > end
	}
	return fl
}

// chaosFindings are the per-fault table, the archive check and what failed.
func chaosFindings(o *Outcome) Findings {
	var f Findings
	t := Table{
		Title: "Faults",
		Note: "One step per fault: load, the fault, load after it, then a drain. Anomalies are verification's findings in the step " +
			"(its messages and drain). Unacked: messages of the step never acked, however often retried. " +
			"p99 send→deliver of the messages sent before the fault, while it lasted, and after it was lifted (latencies are capped at 60 s). " +
			"Recovery: from the kill, or from the resume or the store's return, until the end of the last second whose messages " +
			"(with those of the seconds either side) had a p99 above the threshold: twice the p99 before the fault, or the highest such " +
			"three-second p99 before it if higher, so that a shared machine's noise does not read as a failure to recover. " +
			"Archiver backlog: CHAT_MSG messages the archiver had not acked, polled each second (delivery does not wait for it); " +
			"caught up: when it first came back within the highest backlog seen before the fault, or one second's messages if more.",
		Header: []string{"fault", "process", "at", "lifted after", "lost", "stored twice", "reordered", "duplicated", "gaps", "unacked",
			"p99 before", "p99 during", "p99 after", "threshold", "recovery", "from", "archiver backlog peak", "archiver caught up"},
	}
	var prev verify.Totals
	var worst time.Duration
	recovered := 0
	for _, s := range o.Steps {
		if s.Step.Fault == nil || s.Verify == nil {
			continue
		}
		run, v := s.Fault, *s.Verify
		d := func(cur, old uint64) string { return fmt.Sprint(int64(cur) - int64(old)) }
		unacked := int64(s.Agg.Count(load.Sent)) - int64(s.Agg.Count(load.Acked))
		row := []string{s.Step.Name, run.Process, "", "", d(v.Lost, prev.Lost), d(v.StoredTwice, prev.StoredTwice),
			d(v.Reordered, prev.Reordered), d(v.Duplicated, prev.Duplicated), d(v.Gaps, prev.Gaps), fmt.Sprint(unacked)}
		prev = v
		if unacked != 0 {
			f.fail("%s: %d messages never acked", s.Step.Name, unacked)
		}
		if run.Err != "" {
			f.fail("%s: %s", s.Step.Name, run.Err)
		}
		if run.Start.IsZero() || run.Lifted.IsZero() {
			t.Rows = append(t.Rows, append(row, "–", "–", "–", "–", "not injected", "", "–", "–"))
			continue
		}
		row[2] = fmtDur(run.Start.Sub(o.Result.Start))
		row[3] = fmtDur(run.Lifted.Sub(run.Start))
		ref := s.Step.Fault.recoveryFrom(run)
		from := "resume"
		if s.Step.Fault.Kind == faultKill {
			from = "kill"
		}
		fl := faultLatencies(s.Agg.Series(load.SeriesBySend), s.Start, s.Start.Add(s.Step.Duration), run, ref)
		rec := fmtDur(fl.Recovered)
		if fl.Unrecovered {
			rec = "not within the step (" + fmtDur(fl.Recovered) + " and on)"
		} else {
			recovered++
			worst = max(worst, fl.Recovered)
		}
		// Within a second's messages counts as caught up.
		peak, caught, ok := archiverCatchUp(s.ArchiverLag, run, int64(s.Step.Rate))
		caughtUp := "not within the step"
		if ok {
			caughtUp = fmtDur(caught) + " after lifting"
		}
		t.Rows = append(t.Rows, append(row, fmtDur(fl.Before.P99), fmtDur(fl.During.P99), fmtDur(fl.After.P99), fmtDur(fl.Threshold), rec, from,
			fmt.Sprint(peak), caughtUp))
	}
	f.Tables = append(f.Tables, t)
	f.figure("Faults recovered from", float64(recovered), "", fmt.Sprintf("of %d: p99 back under its pre-fault value within the step", len(t.Rows)))
	f.latency("Longest recovery", worst, "of the faults recovered from")
	archiveFindings(&f, o.Archive)
	return f
}

// archiveFindings adds the archive check.
func archiveFindings(f *Findings, a *ArchiveCheck) {
	if a == nil {
		return
	}
	f.figure("Archive: rooms complete", float64(a.Complete), "", fmt.Sprintf("of %d: seqs 1..head dense, head = CHAT_MSG's, every acked message there once", a.Rooms))
	f.figure("Archive: messages read back", float64(a.Archived), "", "through the history service, from the history store")
	f.figure("Archive: seqs missing", float64(a.Missing), "", "below a room's archive head or CHAT_MSG head")
	f.figure("Archive: client messages stored twice", float64(a.Twice), "", "(room, sender, client_msg_id) under two seqs")
	if !a.OK() {
		f.fail("the archive is incomplete: %d of %d rooms complete", a.Complete, a.Rooms)
	}
	if len(a.Problems) > 0 {
		t := Table{Title: "Archive problems", Header: []string{"problem"}}
		for _, p := range a.Problems {
			t.Rows = append(t.Rows, []string{p})
		}
		f.Tables = append(f.Tables, t)
	}
}
