package chain_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/sandtrail/sandtrail/chain"
)

func ExampleCanonical() {
	out, err := chain.Canonical(nil, []byte(`{ "b": 1.50, "a": "caf\u00e9", "c": [1E2, true] }`))
	fmt.Println(string(out), err)
	// Output: {"a":"café","b":1.5,"c":[100,true]} <nil>
}

// A run of two events, sealed as the emitter does, then verified.
func Example() {
	signer, _ := chain.NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	sealer, _ := chain.NewSealer("run-1", signer)
	v := chain.NewVerifier(chain.VerifierConfig{PublicKey: signer.PublicKey()})
	for seq := 1; seq <= 2; seq++ {
		event := fmt.Sprintf(`{"class_uid":6002,"time":1764263000000,"metadata":{"correlation_uid":"run-1","sequence":%d,"uid":"u-%d"}}`, seq, seq)
		sealed, err := sealer.Seal([]byte(event), seq == 2)
		if err != nil {
			fmt.Println(err)
			return
		}
		link, _ := chain.ReadLink(sealed)
		fmt.Printf("seq %d prev %.8s... hash %.8s... final %v\n", link.Seq, link.Prev, link.Hash, link.Final)
		v.Add(sealed, chain.Origin{Source: "example", Index: int64(seq)})
	}
	rep := v.Report()
	fmt.Println(rep.Runs[0].Status, rep.Runs[0].Signature, rep.OK)
	// Output:
	// seq 1 prev 00000000... hash 53d900f1... final false
	// seq 2 prev 53d900f1... hash 31a2af4f... final true
	// complete valid true
}
