// Package e2e holds Plateau's end-to-end tests: they build the real binary,
// start it on 127.0.0.1 with a temporary configuration and data directory,
// and drive it with real peers (SIPp, baresip, linphonec, Kamailio) and a
// small Go SIP client.
//
// They run in `go test ./...`. When one of those tools is missing the tests
// that need it are skipped, except under CI (env CI set), where they fail.
package e2e
