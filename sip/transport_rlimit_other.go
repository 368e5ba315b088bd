//go:build !unix

package sip

// warnFileLimit has no file descriptor limit to read here.
func (s *Server) warnFileLimit() {}
