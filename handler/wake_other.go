//go:build !js

package handler

import "time"

// alignWake leaves t as it is: wake-ups cost little outside js/wasm.
func alignWake(t time.Time) time.Time { return t }
