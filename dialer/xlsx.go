package dialer

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"
)

// Excel workbooks are what client companies send. They are read with
// excelize (kept, widely used) from the first sheet, as a CSV would be:
// a header row, then one contact per row, the cells as Excel shows them
// (a number formatted "00 00 00 00 00" keeps its leading 0).

// Bounds against a zip bomb: a contact file is small.
const (
	xlsxUnzipLimit    = 64 << 20
	xlsxUnzipXMLLimit = 16 << 20
)

// isXLSX reports whether data is a zip archive (an .xlsx is one).
func isXLSX(data []byte) bool { return bytes.HasPrefix(data, []byte("PK\x03\x04")) }

func parseXLSX(data []byte) (f *File, err error) {
	// A hostile workbook must not take the process down with it.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%w: unreadable Excel workbook", ErrUnreadableFile)
		}
	}()
	wb, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: xlsxUnzipLimit, UnzipXMLSizeLimit: xlsxUnzipXMLLimit})
	if err != nil {
		return nil, fmt.Errorf("%w: not a readable Excel workbook (.xlsx): %v", ErrUnreadableFile, err)
	}
	defer wb.Close()
	sheets := wb.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%w: the workbook has no sheet", ErrUnreadableFile)
	}
	rows, err := wb.Rows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("%w: sheet %q: %v", ErrUnreadableFile, sheets[0], err)
	}
	defer rows.Close()
	line := 0
	read := func() ([]string, int, error) {
		if !rows.Next() {
			if err := rows.Error(); err != nil {
				return nil, line, err
			}
			return nil, line, io.EOF
		}
		line++
		cols, err := rows.Columns()
		return cols, line, err
	}
	f = &File{Encoding: "xlsx"}
	header, _, err := read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: empty sheet %q", ErrUnreadableFile, sheets[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrUnreadableFile, err)
	}
	if err := f.readRows(header, read); err != nil {
		return nil, err
	}
	return f, nil
}
