package push_test

import (
	"crypto/elliptic"
	"os"
)

func ecdhCurve() elliptic.Curve { return elliptic.P256() }

func osStat(p string) (os.FileInfo, error) { return os.Stat(p) }
