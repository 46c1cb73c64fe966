//go:build !linux

package ops

func processRSS() (uint64, bool) { return 0, false }
