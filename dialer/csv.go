package dialer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Limits on a contact file: far above a real list (100,000 contacts is a
// few MB), low enough that a wrong file cannot exhaust memory.
const (
	MaxFileBytes = 64 << 20
	MaxRows      = 500_000
)

// Record is one data row of a contact file as read, before its number is
// normalised.
type Record struct {
	Line    int               `json:"line"` // line in the file, the header being line 1
	Phone   string            `json:"phone"`
	Company string            `json:"company,omitempty"`
	Contact string            `json:"contact,omitempty"`
	Email   string            `json:"email,omitempty"`
	City    string            `json:"city,omitempty"`
	Notes   string            `json:"notes,omitempty"`
	Custom  map[string]string `json:"custom,omitempty"` // the file's other columns, by header
}

// File is a parsed contact file.
type File struct {
	Encoding  string // "utf-8" or "windows-1252"
	Separator rune   // ';', ',' or '\t'
	Header    []string
	Records   []Record
}

// the known columns, matched on a folded header (lower case, no accents,
// letters and digits only), so "Téléphone", "TEL." and "phone" all match.
var columnAliases = map[string]string{
	"company": "company", "societe": "company", "entreprise": "company", "raisonsociale": "company",
	"organisation": "company", "organization": "company", "cabinet": "company", "client": "company",
	"contact": "contact", "nom": "contact", "name": "contact", "interlocuteur": "contact", "contactname": "contact",
	"phone": "phone", "telephone": "phone", "tel": "phone", "numero": "phone", "phonenumber": "phone",
	"numerodetelephone": "phone", "number": "phone",
	"email": "email", "mail": "email", "courriel": "email", "adressemail": "email",
	"city": "city", "ville": "city", "commune": "city",
	"notes": "notes", "note": "notes", "commentaire": "notes", "commentaires": "notes", "remarques": "notes", "remarque": "notes",
}

var foldAccents = strings.NewReplacer("é", "e", "è", "e", "ê", "e", "ë", "e", "à", "a", "â", "a", "ä", "a",
	"î", "i", "ï", "i", "ô", "o", "ö", "o", "ù", "u", "û", "u", "ü", "u", "ç", "c", "œ", "oe", "æ", "ae")

func foldHeader(h string) string {
	h = foldAccents.Replace(strings.ToLower(strings.TrimSpace(h)))
	var b strings.Builder
	for _, r := range h {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParseFile reads a contact file: a header row, then one contact per row;
// an Excel workbook (.xlsx) is read from its first sheet (xlsx.go).
// The encoding is UTF-8 (a byte-order mark is dropped) unless the bytes are
// not valid UTF-8, when they are read as Windows-1252 (what French
// spreadsheets export); the separator is whichever of ';', ',' and tab the
// header holds most of. A file that is not CSV, or has no phone column, is
// ErrUnreadableFile: the caller imports nothing from it.
func ParseFile(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: larger than %d MB", ErrUnreadableFile, MaxFileBytes>>20)
	}
	if isXLSX(data) {
		return parseXLSX(data)
	}
	f := &File{Encoding: "utf-8"}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%w: binary data (NUL bytes), not a CSV text file", ErrUnreadableFile)
	}
	text := string(data)
	if !utf8.ValidString(text) {
		dec, err := charmap.Windows1252.NewDecoder().String(text)
		if err != nil {
			return nil, fmt.Errorf("%w: neither UTF-8 nor Windows-1252: %v", ErrUnreadableFile, err)
		}
		text, f.Encoding = dec, "windows-1252"
	}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: empty file", ErrUnreadableFile)
	}
	first, _, _ := strings.Cut(text, "\n")
	f.Separator = ','
	best := strings.Count(first, ",")
	for _, sep := range []rune{';', '\t'} {
		if n := strings.Count(first, string(sep)); n > best {
			f.Separator, best = sep, n
		}
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = f.Separator
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrUnreadableFile, csvErr(err))
	}
	err = f.readRows(header, func() ([]string, int, error) {
		rec, err := r.Read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = csvErr(err)
			}
			return nil, 0, err
		}
		line, _ := r.FieldPos(0)
		return rec, line, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// readRows reads the contacts under header; next returns each row with
// its line number, then io.EOF.
func (f *File) readRows(header []string, next func() ([]string, int, error)) error {
	f.Header = header
	col := map[string]int{}
	for i, h := range header {
		if k, ok := columnAliases[foldHeader(h)]; ok {
			if _, dup := col[k]; !dup {
				col[k] = i
			}
		}
	}
	phoneCol, ok := col["phone"]
	if !ok {
		return fmt.Errorf("%w: no phone column in the header (want one of phone, téléphone, tel, numéro; found %s)",
			ErrUnreadableFile, quoteList(header, 8))
	}
	known := map[int]string{}
	for k, i := range col {
		known[i] = k
	}
	for {
		rec, line, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnreadableFile, err)
		}
		blank := true
		for _, v := range rec {
			if strings.TrimSpace(v) != "" {
				blank = false
				break
			}
		}
		if blank {
			continue
		}
		if len(f.Records) >= MaxRows {
			return fmt.Errorf("%w: more than %d rows; split the file", ErrUnreadableFile, MaxRows)
		}
		row := Record{Line: line}
		for i, v := range rec {
			v = strings.TrimSpace(v)
			switch k, isKnown := known[i]; {
			case i == phoneCol:
				row.Phone = v
			case isKnown && k == "company":
				row.Company = v
			case isKnown && k == "contact":
				row.Contact = v
			case isKnown && k == "email":
				row.Email = v
			case isKnown && k == "city":
				row.City = v
			case isKnown && k == "notes":
				row.Notes = v
			case v != "":
				name := strings.TrimSpace(fieldName(header, i))
				if row.Custom == nil {
					row.Custom = map[string]string{}
				}
				row.Custom[name] = v
			}
		}
		f.Records = append(f.Records, row)
	}
	return nil
}

func fieldName(header []string, i int) string {
	if i < len(header) && strings.TrimSpace(header[i]) != "" {
		return header[i]
	}
	return fmt.Sprintf("column %d", i+1)
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

func quoteList(ss []string, max int) string {
	if len(ss) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for i, s := range ss {
		if i == max {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if len(s) > 40 {
			s = s[:40]
		}
		fmt.Fprintf(&b, "%q", s)
	}
	return b.String()
}
