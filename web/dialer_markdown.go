package web

import (
	"html"
	"html/template"
	"regexp"
	"strings"

	"plateau/dialer"
)

// Campaign scripts are written in Markdown by supervisors and shown to
// operators. renderScript turns a small subset into HTML: headings (#, ##,
// ###), paragraphs, bullet lists (- or *), numbered lists (1.), **bold**
// and *italics*. Every piece of text is HTML-escaped first, so a script
// can never carry markup of its own: no raw HTML, no links, no images.

var (
	boldRE   = regexp.MustCompile(`\*\*([^*\n]+?)\*\*`)
	italicRE = regexp.MustCompile(`(^|[^*\w])[*_]([^*_\n]+?)[*_]($|[^*\w])`)
	olRE     = regexp.MustCompile(`^\d{1,3}[.)]\s+`)
)

// inline escapes a line of text, then applies bold and italics.
func inline(s string) string {
	s = html.EscapeString(strings.TrimSpace(s))
	s = boldRE.ReplaceAllString(s, "<strong>$1</strong>")
	return italicRE.ReplaceAllString(s, "$1<em>$2</em>$3")
}

func renderScript(src string) template.HTML {
	var b strings.Builder
	var para []string
	list := "" // "ul", "ol" or ""
	flushPara := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + strings.Join(para, "<br>") + "</p>\n")
			para = nil
		}
	}
	closeList := func() {
		if list != "" {
			b.WriteString("</" + list + ">\n")
			list = ""
		}
	}
	openList := func(kind string) {
		flushPara()
		if list != kind {
			closeList()
			b.WriteString("<" + kind + ">\n")
			list = kind
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			flushPara()
			closeList()
		case isFieldLine(t):
			// A capture field (dialer.ScriptFields): the operator types the
			// answer in the call notes; the script shows where to ask.
			flushPara()
			closeList()
			f, _ := dialer.ParseFieldLine(t)
			b.WriteString(`<p class="script-field" data-field="` + html.EscapeString(f.Name) + `">` + html.EscapeString(f.Label) + "</p>\n")
		case strings.HasPrefix(t, "#"):
			level := len(t) - len(strings.TrimLeft(t, "#"))
			text := strings.TrimSpace(t[level:])
			if level > 3 || (text == "" && level > 0) || !strings.HasPrefix(t[level:], " ") {
				openPara(&para, t, closeList)
				continue
			}
			flushPara()
			closeList()
			tag := []string{"h3", "h4", "h5"}[level-1]
			b.WriteString("<" + tag + ">" + inline(text) + "</" + tag + ">\n")
		case strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "* "):
			openList("ul")
			b.WriteString("<li>" + inline(t[2:]) + "</li>\n")
		case olRE.MatchString(t):
			openList("ol")
			b.WriteString("<li>" + inline(olRE.ReplaceAllString(t, "")) + "</li>\n")
		default:
			openPara(&para, t, closeList)
		}
	}
	flushPara()
	closeList()
	return template.HTML(b.String()) // every text went through html.EscapeString
}

func isFieldLine(t string) bool {
	_, ok := dialer.ParseFieldLine(t)
	return ok
}

// openPara adds a line to the paragraph being built (after a list: a new
// paragraph).
func openPara(para *[]string, line string, closeList func()) {
	closeList()
	*para = append(*para, inline(line))
}
