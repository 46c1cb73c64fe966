// Package metrics records latencies and event rates for the bench harness in
// a form that worker processes can ship to a coordinator and merge exactly.
//
// Latencies go into HdrHistograms with microsecond resolution from 1 µs to
// 60 s and three significant digits, so every reported value is within 0.1%
// of a recorded one. A Recorder holds one histogram for a whole run; a Series
// holds event counts per wall-clock second and a histogram per interval, for
// charts of throughput and percentiles over time.
//
// Histograms travel as Encoded strings: the standard HdrHistogram V2
// compressed base64 form ("HISTF…"), which HdrHistogram tools in other
// languages read too. Merging adds bucket counts, so a histogram merged from
// several workers is identical to one that recorded every sample itself.
// Series merge by Unix second, so workers on one machine line up exactly.
package metrics
