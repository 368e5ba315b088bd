//go:build unix

package sip

import "syscall"

// warnFileLimit says at start when the process may run out of file
// descriptors before the TCP cap is reached: accept then fails (retried,
// not fatal), and so do RTP ports and recordings. Each connection is one
// descriptor; a call holds about six (RTP and RTCP of two legs, the WAV).
func (s *Server) warnFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if max := s.opts.TCP.MaxConnections; max > 0 && lim.Cur < uint64(max)+1024 {
		s.log.Warn("open file limit is low for sip.limits.tcp_connections: raise it (ulimit -n, LimitNOFILE=) or lower the cap",
			"nofile", lim.Cur, "tcp_connections", max)
	}
}
