package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// /readyz: a failing check makes it 503; information lines (the trunks'
// states) are shown either way and never decide readiness.
func TestReadyz(t *testing.T) {
	trunks := Check{Name: "trunks", Info: func(context.Context) []string {
		return []string{"trunk c1: up", "trunk c2: down (OPTIONS answered 503)"}
	}}
	ok := Check{Name: "sip", Fn: func(context.Context) error { return nil }}
	draining := Check{Name: "sip", Fn: func(context.Context) error { return errors.New("draining") }}
	tests := []struct {
		name   string
		checks []Check
		status int
		body   string
	}{
		{"ready, a trunk down", []Check{ok, trunks}, 200, "ready\ntrunk c1: up\ntrunk c2: down (OPTIONS answered 503)\n"},
		{"draining", []Check{draining, trunks}, 503, "sip: draining\ntrunk c1: up\ntrunk c2: down (OPTIONS answered 503)\n"},
		{"no trunks", []Check{ok, {Name: "trunks", Info: func(context.Context) []string { return nil }}}, 200, "ready\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(prometheus.NewRegistry(), tt.checks, slog.New(slog.DiscardHandler))
			rec := httptest.NewRecorder()
			s.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.status || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, body, tt.status, tt.body)
			}
		})
	}
}
