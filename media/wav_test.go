package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestWAVRoundTrip(t *testing.T) {
	pcm := Tone(440, 50*time.Millisecond)
	pcm = append(pcm, -32768, 32767)
	var b bytes.Buffer
	if err := WriteWAV(&b, pcm); err != nil {
		t.Fatal(err)
	}
	got, err := ReadWAV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalPCM(got, pcm) {
		t.Fatal("round trip changed samples")
	}
}

func equalPCM(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadWAVErrors(t *testing.T) {
	var good bytes.Buffer
	WriteWAV(&good, []int16{1, 2, 3})
	patch := func(off int, v any) []byte {
		b := bytes.Clone(good.Bytes())
		switch v := v.(type) {
		case uint16:
			binary.LittleEndian.PutUint16(b[off:], v)
		case uint32:
			binary.LittleEndian.PutUint32(b[off:], v)
		}
		return b
	}
	// A LIST chunk before fmt must be skipped.
	withList := append([]byte(nil), good.Bytes()[:12]...)
	withList = append(withList, "LIST\x03\x00\x00\x00abc\x00"...)
	withList = append(withList, good.Bytes()[12:]...)
	if pcm, err := ReadWAV(bytes.NewReader(withList)); err != nil || !equalPCM(pcm, []int16{1, 2, 3}) {
		t.Fatalf("LIST chunk: %v %v", pcm, err)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrBadWAV},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE"), ErrBadWAV},
		{"truncated", good.Bytes()[:30], ErrBadWAV},
		{"stereo", patch(22, uint16(2)), ErrUnsupportedWAV},
		{"16 kHz", patch(24, uint32(16000)), ErrUnsupportedWAV},
		{"8 bit", patch(34, uint16(8)), ErrUnsupportedWAV},
		{"a-law", patch(20, uint16(6)), ErrUnsupportedWAV},
		{"huge fmt", patch(16, uint32(1<<30)), ErrBadWAV},
	}
	for _, tt := range tests {
		if _, err := ReadWAV(bytes.NewReader(tt.data)); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestTone(t *testing.T) {
	if n := len(Tone(1000, time.Second)); n != 8000 {
		t.Fatalf("len %d", n)
	}
	if Tone(1000, 0) != nil {
		t.Fatal("zero duration")
	}
}

func TestEndpointEcho(t *testing.T) {
	pool := testPool(t, 0, nil)
	echo, err := NewEndpoint(pool, lo, PCMA.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	echo.SetEcho(true)
	caller, err := NewEndpoint(nil, lo, PCMA.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	caller.SetRemote(echo.LocalAddr())
	play(t, caller, Tone(500, 100*time.Millisecond))
	waitFor(t, "echo", func() bool { return caller.Received() == 5 && echo.Received() == 5 })
	if len(caller.PCM()) != 800 {
		t.Fatalf("captured %d samples", len(caller.PCM()))
	}
	caller.Reset()
	if caller.Received() != 0 || caller.PCM() != nil {
		t.Fatal("reset")
	}
	echo.Close()
	if pool.InUse() != 0 {
		t.Fatal("endpoint port not released")
	}
	lonely, _ := NewEndpoint(nil, lo, PCMU.Codec())
	defer lonely.Close()
	if err := lonely.Play(t.Context(), Tone(500, 20*time.Millisecond)); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("play without remote: %v", err)
	}
}
