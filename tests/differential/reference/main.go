// Command reference lists the files Docker would send as the build context
// for a directory, using the real github.com/moby/patternmatcher package for
// all pattern matching. It is the oracle for the reggie-build differential
// test (tests/differential.rs); see tests/differential/README.md.
//
// Usage:
//
//	reference [--builder buildkit|classic] [--ignore-file PATH] [--dockerfile REL] CONTEXT_DIR
//
// Output: every non-directory entry (regular files, symlinks, fifos, ...)
// that would be sent, one context-relative '/'-separated path per line,
// sorted by plain byte order. On error: "error: ..." on stderr, exit 1.
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
func readIgnore(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
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
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ignore file: %w", err)
	}
	return out, nil
}

func loadPatterns(path string, mustExist bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	return readIgnore(f)
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

// dirDecision tells the walker what to do with an excluded directory:
// true = descend into it (without emitting it), false = skip it entirely.
type dirDecision func(rel string) bool

func walk(root string, pm *patternmatcher.PatternMatcher, descend dirDecision) ([]string, error) {
	var files []string
	var parents stack
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
		if d.IsDir() {
			if excluded && !descend(rel) {
				return filepath.SkipDir
			}
			parents = append(parents, frame{prefix: rel + "/", info: info})
			return nil
		}
		if !excluded {
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
		patterns, err = loadPatterns(path, *ignoreFile != "")
	case "classic":
		path := *ignoreFile
		if path == "" {
			path = filepath.Join(root, ".dockerignore")
		}
		patterns, err = loadPatterns(path, *ignoreFile != "")
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
		fail("%v", err)
	}

	pm, err := patternmatcher.New(patterns)
	if err != nil {
		fail("invalid ignore patterns: %v", err)
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

	files, err := walk(root, pm, descend)
	if err != nil {
		fail("%v", err)
	}
	sort.Strings(files)
	w := bufio.NewWriter(os.Stdout)
	for _, f := range files {
		w.WriteString(f)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fail("%v", err)
	}
}
