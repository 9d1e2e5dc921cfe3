//go:build !linux

package main

// lowerPriority is Linux-only; elsewhere the writer process keeps the
// gateway's priority.
func lowerPriority(int) error { return nil }
