package web

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
)

// Every string a customer or merchant reads lives in i18n/<lang>.json, for
// the server's templates and the pages' scripts alike (the scripts get the
// catalog as a JSON data block). Adding a language is adding a file: the
// tests check that it has every key of en.json, and a missing key falls
// back to English at run time.

const defaultLang = "en"

// catalog is one language's strings.
type catalog struct {
	lang    string
	strings map[string]string
}

var catalogs = loadCatalogs()

func loadCatalogs() map[string]catalog {
	out := map[string]catalog{}
	entries, err := fs.ReadDir(files, "i18n")
	if err != nil {
		panic("web: " + err.Error())
	}
	for _, e := range entries {
		lang, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := fs.ReadFile(files, path.Join("i18n", e.Name()))
		if err != nil {
			panic("web: " + err.Error())
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			panic("web: i18n/" + e.Name() + ": " + err.Error())
		}
		// Keys are lower case (tags compare case-insensitively); lang keeps
		// the file's spelling for <html lang> (pt-BR).
		out[strings.ToLower(lang)] = catalog{lang: lang, strings: m}
	}
	if _, ok := out[defaultLang]; !ok {
		panic("web: i18n/" + defaultLang + ".json is missing")
	}
	return out
}

// text returns the string for key, in English when the language lacks it,
// and the key itself when no language has it (visible in a test, not a crash).
func (c catalog) text(key string) string {
	if s, ok := c.strings[key]; ok {
		return s
	}
	if s, ok := catalogs[defaultLang].strings[key]; ok {
		return s
	}
	return key
}

// format is text with {name} placeholders replaced: pairs are name, value, ...
func (c catalog) format(key string, pairs ...string) string {
	s := c.text(key)
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// JSON is the whole catalog with English fallbacks filled in, for the scripts.
func (c catalog) JSON() map[string]string {
	out := make(map[string]string, len(catalogs[defaultLang].strings))
	for k, v := range catalogs[defaultLang].strings {
		out[k] = v
	}
	for k, v := range c.strings {
		out[k] = v
	}
	return out
}

// negotiate picks the page language: ?lang= first, then the first
// Accept-Language entry we have (by quality, then by order), else English.
// A tag matches a catalog of the same tag (pt-BR), or of the same base
// language (pt-PT and pt get pt-BR: the nearest we have).
func negotiate(r *http.Request) catalog {
	if c, ok := lookupLang(r.URL.Query().Get("lang")); ok {
		return c
	}
	type choice struct {
		c catalog
		q float64
	}
	var choices []choice
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		if i >= 20 { // bound the work a long header can cause
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q = parseQ(v)
		}
		if c, ok := lookupLang(tag); ok && q > 0 {
			choices = append(choices, choice{c, q})
		}
	}
	sort.SliceStable(choices, func(a, b int) bool { return choices[a].q > choices[b].q })
	if len(choices) > 0 {
		return choices[0].c
	}
	return catalogs[defaultLang]
}

// lookupLang finds the catalog of a language tag: the tag itself, else its
// base language, else a catalog of that base language with a region.
func lookupLang(tag string) (catalog, bool) {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if tag == "" {
		return catalog{}, false
	}
	if c, ok := catalogs[tag]; ok {
		return c, true
	}
	base, _, _ := strings.Cut(tag, "-")
	if c, ok := catalogs[base]; ok {
		return c, true
	}
	for _, key := range langOrder {
		if strings.HasPrefix(key, base+"-") {
			return catalogs[key], true
		}
	}
	return catalog{}, false
}

// langOrder is the catalogs' keys in a fixed order: English first, then
// alphabetical, as the language switch lists them.
var langOrder = func() []string {
	var keys []string
	for k := range catalogs {
		if k != defaultLang {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return append([]string{defaultLang}, keys...)
}()

// langLink is one entry of the language switch: the language's name in
// itself (each catalog's "language.name"), its tag for ?lang=, and whether
// it is the page's.
type langLink struct {
	Tag, Name string
	Current   bool
}

func (c catalog) links() []langLink {
	out := make([]langLink, 0, len(langOrder))
	for _, k := range langOrder {
		other := catalogs[k]
		out = append(out, langLink{Tag: other.lang, Name: other.text("language.name"), Current: other.lang == c.lang})
	}
	return out
}

// parseQ reads a quality value "0", "0.5", "1" (RFC 9110: at most three
// decimals); anything else counts as 0.
func parseQ(s string) float64 {
	switch {
	case s == "1" || strings.HasPrefix(s, "1."):
		return 1
	case s == "0" || !strings.HasPrefix(s, "0.") || len(s) > 5:
		return 0
	}
	q, scale := 0.0, 0.1
	for _, ch := range s[2:] {
		if ch < '0' || ch > '9' {
			return 0
		}
		q += float64(ch-'0') * scale
		scale /= 10
	}
	return q
}
