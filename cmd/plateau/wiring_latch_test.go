package main

import (
	"testing"

	"plateau/config"
	"plateau/media"
)

// trunks[].media_latch reaches the call layer's trunk: any for a carrier
// behind NAT, host (the default) otherwise.
func TestCallOptionsTrunkMediaLatch(t *testing.T) {
	cfg, err := config.Parse([]byte(`site: {detention_mode: false}
trunks:
  - {name: nat, address: "127.0.0.1:5070", media_latch: any}
  - {name: direct, address: "127.0.0.1:5071", media_latch: host}
  - {name: default, address: "127.0.0.1:5072"}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts, err := callOptions(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]media.LatchMode{"nat": media.LatchAny, "direct": media.LatchHost, "default": media.LatchHost}
	if len(opts.Trunks) != len(want) {
		t.Fatalf("%d trunks, want %d", len(opts.Trunks), len(want))
	}
	for _, tc := range opts.Trunks {
		if tc.MediaLatch != want[tc.Name] {
			t.Errorf("trunk %s: media latch %v, want %v", tc.Name, tc.MediaLatch, want[tc.Name])
		}
	}
}
