package sip

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// getHeader returns req's first header named name, compared without regard
// to ASCII case: what sipgo's GetHeader answers, without lower-casing every
// header name on the way (sipgo allocates a lower-case copy of each name it
// does not know, such as Authorization or User-Agent, on every lookup).
func getHeader(req *sip.Request, name string) sip.Header {
	for _, h := range req.Headers() {
		if asciiEqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// getHeaders returns all of req's headers named name, in order (GetHeaders).
func getHeaders(req *sip.Request, name string) []sip.Header {
	var out []sip.Header
	for _, h := range req.Headers() {
		if asciiEqualFold(h.Name(), name) {
			out = append(out, h)
		}
	}
	return out
}

// asciiEqualFold reports whether a and b are equal once ASCII letters are
// lower-cased (other bytes compare as they are, like sip.ASCIIToLower).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// SplitHostPort splits host:port, the host without brackets.
func SplitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return strings.Trim(h, "[]"), n, err
}

// ParseSeconds reads a header's delta-seconds (Expires, Min-Expires,
// Session-Expires…) as a duration from 1 s to max. A peer's value is
// bounded before it is multiplied: 10000000000 seconds would overflow
// time.Duration into a negative interval (a timer that fires at once,
// forever).
func ParseSeconds(v string, max time.Duration) (time.Duration, error) {
	v = strings.TrimSpace(v)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || strings.TrimLeft(v, "0123456789") != "" || n < 1 || n > int64(max/time.Second) {
		return 0, fmt.Errorf("%q is not a number of seconds from 1 to %d", v, int64(max/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// HasTag reports whether values holds tag (an option tag), any case.
func HasTag(values []string, tag string) bool {
	for _, v := range values {
		if strings.EqualFold(v, tag) {
			return true
		}
	}
	return false
}

// HeaderValues splits a request's comma-separated header values (all
// occurrences), trimmed, empty ones dropped.
func HeaderValues(req *sip.Request, name string) []string {
	return SplitValues(getHeaders(req, name))
}

// SplitValues splits comma-separated header values, trimmed, empty ones
// dropped.
func SplitValues(hs []sip.Header) []string {
	var out []string
	for _, h := range hs {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
