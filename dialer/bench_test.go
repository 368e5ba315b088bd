package dialer

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine it says what the work costs when wall time says how busy the
// neighbours are.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// contactFile is a campaign file of n contacts with every column filled, as
// a client would send (French numbers, semicolons).
func contactFile(n int) []byte {
	var b strings.Builder
	b.WriteString("Société;Interlocuteur;Téléphone;E-mail;Ville;Commentaire;Secteur\n")
	for i := range n {
		fmt.Fprintf(&b, "Cabinet %d;Contact %d;02 %02d %02d %02d %02d;c%d@example.fr;Nantes;note %d;architecture\n",
			i, i, 40+i/1000000, i/10000%100, i/100%100, i%100, i, i)
	}
	return []byte(b.String())
}

// BenchmarkImport100k imports a 100,000-contact file (every number new, so
// each becomes an allowlist proposal with its audit entry) in one
// transaction. Target: under 10 s.
func BenchmarkImport100k(b *testing.B) {
	data := contactFile(100_000)
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, 1)
		c := f.campaign("Big", "101")
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		rep, err := f.svc.Import(f.ctx, f.by("201"), c.ID, data)
		if err != nil {
			b.Fatal(err)
		}
		el, cpu := time.Since(start), cpuTime()-cpu0
		if rep.Added != 100_000 || rep.Proposed != 100_000 {
			b.Fatalf("report: added %d proposed %d rejected %d", rep.Added, rep.Proposed, len(rep.Rejected))
		}
		b.ReportMetric(el.Seconds(), "s/import")
		b.ReportMetric(cpu.Seconds(), "cpu-s/import")
		b.Logf("imported %d contacts (%d proposals) in %v (%v CPU)", rep.Added, rep.Proposed, el.Round(time.Millisecond), cpu.Round(time.Millisecond))
	}
}

// BenchmarkNextContact measures leases on a campaign of 100,000 approved
// contacts: each op is one Next (the lease) and one Release, by 20
// operators in turn; the clock moves 1 ms an op so released contacts go to
// the back of the queue. leases/s counts the time spent in Next alone,
// next+release/s the whole cycle. Target: at least 2,000 leases/s.
func BenchmarkNextContact(b *testing.B) {
	f := newFixture(b, 20)
	ops := make([]string, 20)
	for i := range ops {
		ops[i] = fmt.Sprint(101 + i)
	}
	c := f.campaign("Big", ops...)
	if _, err := f.svc.Import(f.ctx, f.by("201"), c.ID, contactFile(100_000)); err != nil {
		b.Fatal(err)
	}
	f.approve(c)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	var inNext time.Duration
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		op := ops[i%len(ops)]
		i++
		f.clk.Add(time.Millisecond)
		t0 := time.Now()
		l, err := f.svc.Next(f.ctx, op, c.ID)
		inNext += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.svc.Release(f.ctx, op, l.Contact.ID); err != nil {
			b.Fatal(err)
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(i)/inNext.Seconds(), "leases/s")
	b.ReportMetric(float64(i)/cpu.Seconds(), "next+release/cpu-s")
	b.ReportMetric(float64(i)/el.Seconds(), "next+release/s")
}
