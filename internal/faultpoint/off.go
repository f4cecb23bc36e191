//go:build !faultinject

// Package faultpoint marks the places where a crash is most telling
// (between a commit and its answer, between a write and its checkpoint).
// Only the faultinject build, which test/faults makes, acts on them; in
// every other build Hit is an empty function the compiler removes.
package faultpoint

// Hit marks the fault point name.
func Hit(string) {}
