//go:build !linux

package sqlite

import (
	"errors"
	"os"
)

// growPipe is Linux-only (F_SETPIPE_SZ); elsewhere the pipe keeps its size.
func growPipe(*os.File) (int, error) { return 0, errors.ErrUnsupported }

// pollable is Linux-only; elsewhere the writer process reads stdin as it is.
func pollable(stdin *os.File) *os.File { return stdin }
