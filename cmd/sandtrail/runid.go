package main

import "github.com/google/uuid"

// newRunID returns a time-ordered run id (a UUIDv7 string).
func newRunID() string {
	u, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return u.String()
}
