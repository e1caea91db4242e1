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
	base  string
	token string
	http  *http.Client
}

func newHostClient(c common) (*hostClient, error) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "api-token"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no API token in %s: has synctray run with this --data-dir?", c.dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	return &hostClient{
		base:  "http://" + c.addr,
		token: strings.TrimSpace(string(b)),
		http:  &http.Client{Timeout: 2 * time.Minute},
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
		return fmt.Errorf("is synctray running at %s? %w", h.base, err)
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
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &apiError{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}
