// Command reference lists the files Docker would send as the build context
// for a directory, using the real github.com/moby/patternmatcher package for
// all pattern matching. It is the oracle for the reggie-build differential
// test (tests/differential.rs); see tests/differential/README.md.
//
// Usage:
//
//	reference [--builder buildkit|classic] [--ignore-file PATH] [--dockerfile REL] [--entries] CONTEXT_DIR
//
// Output: every non-directory entry (regular files, symlinks, fifos, ...)
// that would be sent, one context-relative '/'-separated path per line,
// sorted by plain byte order. With --entries: every entry of the archive,
// directories too (with a trailing '/', lazily sent parents included), in
// the order they are sent. On error: "error: FILE:LINE: ..." (the ignore
// file and line of the pattern that fails, when one does) on stderr, exit 1.
//
// The walk logic is an independent re-implementation (written for this
// harness) of the behaviour of tonistiigi/fsutil filterFS.Walk (BuildKit) and
// moby/go-archive TarWithOptions plus docker/cli TrimBuildFilesFromExcludes
// (classic builder). Only the matching itself comes from patternmatcher.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// readIgnore parses a .dockerignore stream the way patternmatcher v0.6's
// ignorefile.ReadAll does.
func readIgnore(r io.Reader) ([]string, []int, error) {
	var out []string
	var lines []int
	sc := bufio.NewScanner(r)
	first := true
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes() // ScanLines already drops a trailing '\r'
		if first {
			line = bytes.TrimPrefix(line, []byte{0xEF, 0xBB, 0xBF})
			first = false
		}
		s := string(line)
		if strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		neg := s[0] == '!'
		if neg {
			s = strings.TrimSpace(s[1:])
		}
		if s != "" {
			s = filepath.ToSlash(filepath.Clean(s))
			if len(s) > 1 && s[0] == '/' {
				s = s[1:]
			}
		}
		if neg {
			s = "!" + s
		}
		out = append(out, s)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading ignore file: %w", err)
	}
	return out, lines, nil
}

func loadPatterns(path string, mustExist bool) ([]string, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	defer f.Close()
	return readIgnore(f)
}

// source names the ignore file and line of the pattern that fails, so the
// differential test can check that both programs reject the same pattern:
// the first one that patternmatcher.New refuses on its own, or whose
// regular expression fails when matched. Empty if none does.
type source struct {
	file  string
	lines []int
}

func (src source) culprit(patterns []string) string {
	name := func(i int) string {
		if i < len(src.lines) {
			return fmt.Sprintf("%s:%d: ", src.file, src.lines[i])
		}
		return fmt.Sprintf("(added pattern %q): ", patterns[i])
	}
	// New checks every pattern before any regex is compiled.
	for i, p := range patterns {
		if _, err := patternmatcher.New([]string{p}); err != nil {
			return name(i)
		}
	}
	for i, p := range patterns {
		// Matched without its "!": the matcher skips an exception until
		// something is excluded, so it would never compile it.
		pm, _ := patternmatcher.New([]string{strings.TrimPrefix(p, "!")})
		if _, err := pm.MatchesOrParentMatches("x"); err != nil {
			return name(i)
		}
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// stripTrailingGlob removes one trailing "/**" and then one trailing "/*".
func stripTrailingGlob(p string) string {
	p = strings.TrimSuffix(p, "/**")
	p = strings.TrimSuffix(p, "/*")
	return p
}

type frame struct {
	prefix string // directory path + "/"
	info   patternmatcher.MatchInfo
}

// stack tracks the match results of the visited ancestor directories.
type stack []frame

func (s *stack) parent(rel string) patternmatcher.MatchInfo {
	for len(*s) > 0 && !strings.HasPrefix(rel, (*s)[len(*s)-1].prefix) {
		*s = (*s)[:len(*s)-1]
	}
	if len(*s) == 0 {
		return patternmatcher.MatchInfo{}
	}
	return (*s)[len(*s)-1].info
}

// entry is one entry of the archive, in the order it is sent; a directory
// ends with "/".
type entry = string

// dirDecision tells the walker what to do with an excluded directory:
// true = descend into it (without emitting it), false = skip it entirely.
type dirDecision func(rel string) bool

// walk returns the entries sent, in order. With lazyParents (fsutil), an
// excluded directory that is entered is sent just before the first entry
// inside it that is sent; without (go-archive), it is not sent at all.
func walk(root string, pm *patternmatcher.PatternMatcher, descend dirDecision, lazyParents bool) ([]entry, error) {
	var files []entry
	var parents stack
	var pending []string // excluded directories entered, not yet sent
	flush := func(rel string) {
		for _, d := range pending {
			if strings.HasPrefix(rel, d+"/") {
				files = append(files, d+"/")
			}
		}
		pending = pending[:0]
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		relOS, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if relOS == "." {
			return nil
		}
		rel := filepath.ToSlash(relOS)
		excluded, info, err := pm.MatchesUsingParentResults(rel, parents.parent(rel))
		if err != nil {
			return fmt.Errorf("matching %q: %w", rel, err)
		}
		// Directories left since they were entered are no longer pending.
		kept := pending[:0]
		for _, d := range pending {
			if strings.HasPrefix(rel, d+"/") {
				kept = append(kept, d)
			}
		}
		pending = kept
		if d.IsDir() {
			if excluded && !descend(rel) {
				return filepath.SkipDir
			}
			parents = append(parents, frame{prefix: rel + "/", info: info})
			if excluded {
				if lazyParents {
					pending = append(pending, rel)
				}
			} else {
				flush(rel)
				files = append(files, rel+"/")
			}
			return nil
		}
		if !excluded {
			flush(rel)
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// validateContext mirrors the matching part of docker/cli's
// ValidateContextDirectory: every visited path is checked with
// MatchesOrParentMatches, excluded directories are not entered, and a
// matching error aborts the build.
func validateContext(root string, patterns []string) error {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("invalid ignore patterns: %w", err)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil // docker never matches the context root itself
		}
		skip, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return fmt.Errorf("checking context: matching %q: %w", rel, err)
		}
		if skip && d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
}

func main() {
	builder := flag.String("builder", "buildkit", "buildkit or classic")
	ignoreFile := flag.String("ignore-file", "", "ignore file to use (overrides the default lookup)")
	dockerfile := flag.String("dockerfile", "Dockerfile", "Dockerfile path relative to the context")
	entriesMode := flag.Bool("entries", false, "list every entry of the archive in the order sent, directories with a trailing /")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: reference [--builder buildkit|classic] [--ignore-file PATH] [--dockerfile REL] CONTEXT_DIR")
	}
	root := flag.Arg(0)
	st, err := os.Stat(root)
	if err != nil {
		fail("%v", err)
	}
	if !st.IsDir() {
		fail("%s is not a directory", root)
	}
	dfRel := filepath.ToSlash(filepath.Clean(*dockerfile))

	var patterns []string
	var src source
	switch *builder {
	case "buildkit":
		path := *ignoreFile
		if path == "" {
			specific := filepath.Join(root, filepath.FromSlash(dfRel)) + ".dockerignore"
			if exists(specific) {
				path = specific
			} else {
				path = filepath.Join(root, ".dockerignore")
			}
		}
		patterns, src.lines, err = loadPatterns(path, *ignoreFile != "")
		src.file = filepath.Base(path)
	case "classic":
		path := *ignoreFile
		if path == "" {
			path = filepath.Join(root, ".dockerignore")
		}
		patterns, src.lines, err = loadPatterns(path, *ignoreFile != "")
		src.file = filepath.Base(path)
		if err == nil {
			// docker/cli ValidateContextDirectory runs first, on the
			// untrimmed patterns; only its matching errors matter here.
			err = validateContext(root, patterns)
		}
		if err == nil {
			// docker/cli TrimBuildFilesFromExcludes (errors are ignored there).
			if keep, _ := patternmatcher.Matches(".dockerignore", patterns); keep {
				patterns = append(patterns, "!.dockerignore")
			}
			if keep, _ := patternmatcher.Matches(dfRel, patterns); keep {
				patterns = append(patterns, "!"+dfRel)
			}
		}
	default:
		fail("unknown builder %q", *builder)
	}
	if err != nil {
		fail("%s%v", src.culprit(patterns), err)
	}

	pm, err := patternmatcher.New(patterns)
	if err != nil {
		fail("%sinvalid ignore patterns: %v", src.culprit(patterns), err)
	}

	var descend dirDecision
	if *builder == "buildkit" {
		// fsutil: the SkipDir optimisation only applies when every
		// exception is a plain prefix (after dropping a trailing glob).
		onlyPrefix := true
		for _, p := range pm.Patterns() {
			if p.Exclusion() && strings.ContainsAny(stripTrailingGlob(p.String()), `*[]?^\`) {
				onlyPrefix = false
				break
			}
		}
		descend = func(rel string) bool {
			if !onlyPrefix {
				return true
			}
			if !pm.Exclusions() {
				return false
			}
			for _, p := range pm.Patterns() {
				if p.Exclusion() && strings.HasPrefix(stripTrailingGlob(p.String())+"/", rel+"/") {
					return true
				}
			}
			return false
		}
	} else {
		// go-archive TarWithOptions.
		descend = func(rel string) bool {
			if !pm.Exclusions() {
				return false
			}
			for _, p := range pm.Patterns() {
				if p.Exclusion() && strings.HasPrefix(p.String()+"/", rel+"/") {
					return true
				}
			}
			return false
		}
	}

	entries, err := walk(root, pm, descend, *builder == "buildkit")
	if err != nil {
		fail("%s%v", src.culprit(patterns), err)
	}
	var files []string
	if *entriesMode {
		files = entries
	} else {
		for _, e := range entries {
			if !strings.HasSuffix(e, "/") {
				files = append(files, e)
			}
		}
		sort.Strings(files)
	}
	w := bufio.NewWriter(os.Stdout)
	for _, f := range files {
		w.WriteString(f)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fail("%v", err)
	}
}
