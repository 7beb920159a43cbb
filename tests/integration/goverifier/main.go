// Command goverifier checks a tenios-archive custody log with Go's own transparency-log
// packages (golang.org/x/mod/sumdb/tlog and sumdb/note): an implementation independent
// of tenios-archive's Python code.
//
// Usage: goverifier VERIFIER_KEY LOGDIR CHECKS.json
//
//	goverifier proof VERIFIER_KEY FILE.tlog-proof...
//
// LOGDIR is a copy of the bucket's {prefix}/_custody/log/ tree.  CHECKS.json names an
// earlier checkpoint, the consistency proof from it to the latest, and inclusion proofs
// (all as tenios-archive computed them).  The proof form checks C2SP tlog-proofs (as
// `audit prove` writes them), parsed here from the spec text: the checkpoint with
// note.Open, the entry of the extra line with tlog.CheckRecord.  Exit 0 and "ok" when
// every check passes.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index int64    `json:"index"`
	Entry string   `json:"entry"`
	Proof []string `json:"proof"`
}

type checks struct {
	OldCheckpoint string      `json:"old_checkpoint"`
	Consistency   []string    `json:"consistency"`
	Inclusion     []inclusion `json:"inclusion"`
}

// c2spTiles reads C2SP tlog-tiles paths: Go's sumdb paths carry the height
// ("tile/8/0/000"), C2SP's do not ("tile/0/000").
type c2spTiles struct{ dir string }

func (r c2spTiles) Height() int { return 8 }

func (r c2spTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		data, err := os.ReadFile(filepath.Join(r.dir, path))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r c2spTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "goverifier: "+format+"\n", args...)
	os.Exit(1)
}

// ignored counts the signature lines note.Open skipped as not the log's (a witness's
// cosignatures, C2SP tlog-cosignature): they must not stop Go from opening the note.
var ignored int

func openCheckpoint(path string, verifier note.Verifier) (string, tlog.Tree) {
	msg, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("%s: %v", path, err)
	}
	ignored += len(n.UnverifiedSigs)
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("%s: not a checkpoint", path)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("%s: size: %v", path, err)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("%s: root: %v", path, err)
	}
	return lines[0], tlog.Tree{N: size, Hash: root}
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := tlog.ParseHash(s)
		if err != nil {
			fail("proof hash %q: %v", s, err)
		}
		out[i] = h
	}
	return out
}

func bundleEntry(dir string, tree tlog.Tree, index int64) []byte {
	n := index / 256
	width := tree.N - n*256
	t := tlog.Tile{H: 8, L: 0, N: n, W: 256}
	if width < 256 {
		t.W = int(width)
	}
	path := strings.Replace(t.Path(), "tile/8/0/", "tile/entries/", 1)
	data, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		fail("%v", err)
	}
	for i := int64(0); len(data) >= 2; i++ {
		size := int(binary.BigEndian.Uint16(data))
		entry := data[2 : 2+size]
		if i == index%256 {
			return entry
		}
		data = data[2+size:]
	}
	fail("entry %d not in %s", index, path)
	return nil
}

// checkProof verifies one C2SP tlog-proof file and returns its leaf index.
func checkProof(path string, verifier note.Verifier) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	head, checkpoint, found := bytes.Cut(raw, []byte("\n\n"))
	if !found {
		fail("%s: no empty line before the checkpoint", path)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || len(lines) < 3 {
		fail("%s: not a tlog-proof", path)
	}
	extra := strings.TrimPrefix(lines[1], "extra ")
	if extra == lines[1] {
		fail("%s: no extra line (the entry)", path)
	}
	entry, err := base64.StdEncoding.DecodeString(extra)
	if err != nil {
		fail("%s: extra: %v", path, err)
	}
	indexText := strings.TrimPrefix(lines[2], "index ")
	if indexText == lines[2] {
		fail("%s: no index line", path)
	}
	index, err := strconv.ParseInt(indexText, 10, 64)
	if err != nil {
		fail("%s: index: %v", path, err)
	}
	n, err := note.Open(checkpoint, note.VerifierList(verifier))
	if err != nil {
		fail("%s: checkpoint: %v", path, err)
	}
	body := strings.SplitN(n.Text, "\n", 4)
	size, err := strconv.ParseInt(body[1], 10, 64)
	if err != nil {
		fail("%s: size: %v", path, err)
	}
	root, err := tlog.ParseHash(body[2])
	if err != nil {
		fail("%s: root: %v", path, err)
	}
	if err := tlog.CheckRecord(hashes(lines[3:]), size, root, index, tlog.RecordHash(entry)); err != nil {
		fail("%s: inclusion proof of leaf %d: %v", path, index, err)
	}
	return index
}

func main() {
	if len(os.Args) >= 4 && os.Args[1] == "proof" {
		verifier, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail("verifier key: %v", err)
		}
		for _, path := range os.Args[3:] {
			checkProof(path, verifier)
		}
		fmt.Printf("ok: %d tlog-proofs\n", len(os.Args)-3)
		return
	}
	if len(os.Args) != 4 {
		fail("usage: goverifier VERIFIER_KEY LOGDIR CHECKS.json")
	}
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("verifier key: %v", err)
	}
	dir := os.Args[2]
	var want checks
	raw, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("%v", err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		fail("%v", err)
	}
	origin, tree := openCheckpoint(filepath.Join(dir, "checkpoint"), verifier)
	reader := tlog.TileHashReader(tree, c2spTiles{dir})
	root, err := tlog.TreeHash(tree.N, reader)
	if err != nil || root != tree.Hash {
		fail("tiles do not hash to the signed root: %v", err)
	}
	for _, inc := range want.Inclusion {
		entry, err := base64.StdEncoding.DecodeString(inc.Entry)
		if err != nil {
			fail("%v", err)
		}
		if !bytes.Equal(bundleEntry(dir, tree, inc.Index), entry) {
			fail("entry %d differs from the entry bundle", inc.Index)
		}
		leaf := tlog.RecordHash(entry)
		if err := tlog.CheckRecord(hashes(inc.Proof), tree.N, tree.Hash, inc.Index, leaf); err != nil {
			fail("inclusion proof of leaf %d: %v", inc.Index, err)
		}
		ours, err := tlog.ProveRecord(tree.N, inc.Index, reader)
		if err != nil || fmt.Sprint(ours) != fmt.Sprint(hashes(inc.Proof)) {
			fail("Go's inclusion proof of leaf %d differs: %v", inc.Index, err)
		}
	}
	oldOrigin, old := openCheckpoint(filepath.Join(dir, want.OldCheckpoint), verifier)
	if oldOrigin != origin {
		fail("origins differ: %q, %q", oldOrigin, origin)
	}
	proof := hashes(want.Consistency)
	if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("consistency %d -> %d: %v", old.N, tree.N, err)
	}
	ours, err := tlog.ProveTree(tree.N, old.N, reader)
	if err != nil || fmt.Sprint(ours) != fmt.Sprint(proof) {
		fail("Go's consistency proof differs: %v", err)
	}
	fmt.Printf("ok: %s, %d leaves, %d inclusion proofs, consistent with %d\n",
		origin, tree.N, len(want.Inclusion), old.N)
	fmt.Printf("signature lines of other keys ignored: %d\n", ignored)
}
