package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"plateau/media"
	"plateau/sim"
)

// runDial is the built-in test user agent: `plateau dial --as 101 NUMBER`.
// It registers, places one call, plays audio, hangs up and unregisters,
// printing each SIP step. It exits 0 when the call was answered and RTP came
// back.
func runDial(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "dial")
	as := fs.String("as", "", "extension to register and call as (required)")
	password := fs.String("password", "", "SIP password (default: the sip_password of the extension's users: entry in -c)")
	server := fs.String("server", "", "Plateau's SIP address host:port (default: sip.listen of -c, else 127.0.0.1:5060)")
	transport := fs.String("transport", "udp", "udp or tcp")
	// 10 s: the called party hears the 3.9 s recording notice first, and the
	// recording should hold a few seconds of conversation after it.
	seconds := fs.Int("seconds", 10, "how long the call lasts once answered, playing audio, before hanging up")
	play := fs.String("play", "", "WAV file to play (8 kHz mono 16-bit); default a 440 Hz tone")
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Accept flags after the number too: plateau dial 0240123456 --as 101.
	var number string
	if fs.NArg() > 0 {
		number = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("dial: want one NUMBER, got extra %q", fs.Arg(0))
		}
	}
	// A phone sends digits: drop the separators people type (02 40 12 34 56).
	number = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" .-()/", r) {
			return -1
		}
		return r
	}, number)
	switch {
	case number == "":
		return usagef("dial: want a NUMBER, e.g. plateau dial --as 101 0240123456")
	case *as == "":
		return usagef("dial: --as EXTENSION is required, e.g. plateau dial --as 101 %s", number)
	case *transport != "udp" && *transport != "tcp":
		return usagef("dial: --transport %q is not udp or tcp", *transport)
	case *seconds < 1:
		return usagef("dial: --seconds must be at least 1")
	}
	cfg, err := dialConfig(*path, explicitConfig(fs), *password == "")
	if err != nil {
		return err
	}
	if cfg != nil {
		if *password == "" {
			// Checked here, before any packet: a guessed or empty
			// password would count toward the source's ban.
			if *password, err = sipPasswordOf(cfg, *path, *as); err != nil {
				return err
			}
		}
		if *server == "" {
			host, port, err := net.SplitHostPort(cfg.SIP.Listen)
			if err == nil {
				if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
					host = "127.0.0.1"
				}
				*server = net.JoinHostPort(host, port)
			}
		}
	}
	if *server == "" {
		*server = "127.0.0.1:5060"
	}
	if _, _, err := net.SplitHostPort(*server); err != nil {
		return usagef("dial: --server %q is not host:port", *server)
	}
	dur := time.Duration(*seconds) * time.Second
	pcm := media.Tone(440, dur)
	if *play != "" {
		f, err := os.Open(*play)
		if err != nil {
			return usagef("dial: --play: %v", err)
		}
		wav, err := media.ReadWAV(f)
		f.Close()
		if err != nil {
			return usagef("dial: --play %s: %v", *play, err)
		}
		if len(wav) == 0 {
			return usagef("dial: --play %s has no audio", *play)
		}
		pcm = make([]int16, 0, int(dur/time.Second)*media.SampleRate)
		for len(pcm) < cap(pcm) {
			pcm = append(pcm, wav[:min(len(wav), cap(pcm)-len(pcm))]...)
		}
	}

	ph, err := sim.NewPhone(sim.PhoneConfig{Server: *server, Transport: *transport, User: *as, Password: *password, Out: e.stdout})
	if err != nil {
		return err
	}
	defer ph.Close()
	// Clean-up (BYE, unregister) must still run after Ctrl-C.
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = ph.Register(rctx, time.Hour)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("register %s at %s: no answer within 10s (is plateau serve running there? see --server, --transport)", *as, *server)
	}
	var se *sim.StatusError
	if errors.As(err, &se) && (se.Status == 401 || se.Status == 403 || se.Status == 407) {
		return fmt.Errorf("register %s at %s: %s: the server refused the password of %s (check --password or the users: entry of %s)", *as, *server, se, *as, *path)
	}
	if errors.As(err, &se) {
		return fmt.Errorf("register %s at %s: %s", *as, *server, se)
	}
	if err != nil {
		return fmt.Errorf("register %s at %s: %w", *as, *server, err)
	}
	defer func() {
		uctx, cancel := cleanup()
		defer cancel()
		if err := ph.Unregister(uctx); err != nil {
			fmt.Fprintf(e.stderr, "unregister: %v\n", err)
		}
	}()

	call, err := ph.Dial(ctx, number)
	if err != nil {
		if errors.As(err, &se) {
			if se.Warning != "" {
				return fmt.Errorf("refused: %s: %s", se, se.Warning)
			}
			return fmt.Errorf("refused: %s", se)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "… call up, playing %s for %ds\n", map[bool]string{true: *play, false: "a 440 Hz tone"}[*play != ""], *seconds)
	playErr := call.Play(ctx, pcm)
	time.Sleep(200 * time.Millisecond) // let the last echoed packets arrive
	hctx, cancel := cleanup()
	call.Hangup(hctx)
	cancel()
	st := call.Stats()
	fmt.Fprintf(e.stdout, "… RTP: sent %d, received %d packets (%s)\n", st.Sent, st.Received, st.Codec)
	if st.RemoteHangup {
		fmt.Fprintln(e.stdout, "… the far end hung up")
	}
	if cfg != nil {
		printRecording(ctx, e, cfg, *as, call.CallID())
	}
	switch {
	case playErr != nil && ctx.Err() == nil:
		return fmt.Errorf("play: %w", playErr)
	case st.Received == 0:
		return fmt.Errorf("call answered but no RTP received from the far end")
	}
	return nil
}
