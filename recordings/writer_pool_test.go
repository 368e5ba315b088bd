package recordings

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Buffers go back to the pool silent, whatever a recording left in them.
func TestPutBufsSilencesRings(t *testing.T) {
	b := new(writerBufs)
	for i := range b.ring {
		for j := range b.ring[i] {
			b.ring[i][j] = int16(j + 1)
		}
	}
	putBufs(b)
	for i := range b.ring {
		if slices.ContainsFunc(b.ring[i][:], func(v int16) bool { return v != 0 }) {
			t.Fatalf("ring %d not silent after putBufs", i)
		}
	}
}

// Recordings made one after the other on pooled buffers are the same as on
// fresh ones, and a closed Writer holds no buffer any more.
func TestWriterReusesBuffers(t *testing.T) {
	pkts := simulate(t0, rand.New(rand.NewPCG(7, 7)), 0.05, 20*time.Millisecond,
		operatorSpec(3*time.Second, nil), outsideSpec(500*time.Millisecond, 3*time.Second, nil))
	end := t0.Add(3 * time.Second)
	l1, r1, w, _ := writeAndClose(t, pkts, end)
	if w.bufs != nil || w.buf != nil || w.ring[Operator] != nil || w.ring[Outside] != nil {
		t.Fatal("a closed Writer keeps its buffers")
	}
	for range 3 {
		l2, r2, _, _ := writeAndClose(t, pkts, end)
		if !slices.Equal(l1, l2) || !slices.Equal(r1, r2) {
			t.Fatal("a recording on reused buffers differs")
		}
	}
}
