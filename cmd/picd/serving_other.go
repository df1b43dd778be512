//go:build !unix

package main

// Without flock a serving gateway is not detected here.
func markServing(string) (func(), error) { return func() {}, nil }

func gatewayServes(string) (bool, error) { return false, nil }
