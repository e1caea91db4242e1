package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"synctray/localserver"
)

// hostClient talks to a running host's JSON API with the API token.
type hostClient struct {
	base    string
	token   string
	dataDir string // where the token came from, for errors
	http    *http.Client
}

func newHostClient(c common) (*hostClient, error) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "api-token"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &codedError{"no_token", fmt.Errorf("no API token in %s: has synctray run with this --data-dir?", c.dataDir)}
	}
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	return &hostClient{
		base:    "http://" + c.addr,
		token:   strings.TrimSpace(string(b)),
		dataDir: c.dataDir,
		http:    &http.Client{Timeout: 2 * time.Minute},
	}, nil
}

// apiError is an error answer of the host.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message + " (" + e.Code + ")" }

// do sends a request and decodes a 2xx answer into out (if not nil).
func (h *hostClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return &codedError{"host_unreachable", fmt.Errorf("is synctray running at %s? %w", h.base, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error localserver.ErrorBody `json:"error"`
		}
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			ae.Code, ae.Message = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(data))
		} else {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return h.tokenMismatch(ctx, ae)
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// tokenMismatch explains a 401: the token in this data dir is not the
// one of the host at this address; the host's /healthz (which needs no
// token) says which data dir it uses.
func (h *hostClient) tokenMismatch(ctx context.Context, ae *apiError) error {
	theirs := "another data dir"
	if dir := healthDataDir(ctx, h.base); dir != "" {
		theirs = "the data dir " + dir
	}
	mine := h.dataDir
	if abs, err := filepath.Abs(mine); err == nil {
		mine = abs
	}
	return &codedError{"token_mismatch", fmt.Errorf("the API token in %s does not match the synctray running at %s, which uses %s: "+
		"give that --data-dir (or SYNCTRAY_DATA_DIR), or the --addr of the synctray that uses %s (%w)", mine, h.base, theirs, mine, ae)}
}

// healthDataDir asks base's /healthz which data dir the synctray there
// uses: "" when it does not answer as synctray or does not say.
func healthDataDir(ctx context.Context, base string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var health struct {
		App     string `json:"app"`
		DataDir string `json:"data_dir"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&health) != nil || health.App != "synctray" {
		return ""
	}
	return health.DataDir
}
