package build

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// How a jar gets its content version (stampJar), for convention builds and
// for `build` commands alike, after the build:
//
//   - its manifest's Implementation-Version becomes the declared version plus
//     the label as semver build metadata, "0.1.0" → "0.1.0+sl.3f9a1c2e" (sbt
//     writes Implementation-Version by default; without one it is the label
//     alone, "sl.3f9a1c2e"), in a manifest that is created if the jar has none;
//   - its file name carries the same: score_2.12-0.1.0.jar →
//     score_2.12-0.1.0+sl.3f9a1c2e.jar when the name ends in the declared
//     version, else a "-sl.3f9a1c2e" suffix (orders.jar → orders-sl.3f9a1c2e.jar).
//
// A signed jar (META-INF/*.SF) keeps its manifest, which its signature covers;
// only its file name changes. Every other entry is copied byte for byte (compressed data, times, extra
// fields), and the manifest is stored uncompressed with its original time (or
// jarDate), so stamping the same jar always gives the same bytes.

const manifestName = "META-INF/MANIFEST.MF"

// stampJar writes the stamped copy of the jar at path into the work directory
// and returns the copy's path.
func (s *session) stampJar(path string) (string, error) {
	label := ContentLabel(s.tree)
	name, version, err := stampJarAs(path, filepath.Join(s.work, "stamped"), label, s.p.Version, s.p.Name)
	if err != nil {
		return "", s.fail(ErrBuildFailed, outcome{}, fmt.Sprintf("cannot add the content version to %s: %v", filepath.Base(path), err),
			"the artifact must be a jar (zip) file; fix the build or the artifact glob")
	}
	s.r.logf("content version: %s, Implementation-Version %s", filepath.Base(name), version)
	return name, nil
}

// stampJar copies the jar at src into dir under its stamped name; it returns
// the new path and the Implementation-Version written.
func stampJar(src, dir, label string) (string, string, error) {
	return stampJarAs(src, dir, label, "", "")
}

// stampJarAs is stampJar; a library's jar (fixed, its release version, not
// empty) gets Implementation-Version fixed and the Maven file name
// <artifact>-<fixed>.jar instead of the content label.
func stampJarAs(src, dir, label, fixed, artifact string) (string, string, error) {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return "", "", err
	}
	defer zr.Close()
	var mf *zip.File
	for _, f := range zr.File {
		if strings.EqualFold(f.Name, manifestName) {
			mf = f
			break
		}
	}
	var text []byte
	if mf != nil {
		rc, err := mf.Open()
		if err != nil {
			return "", "", fmt.Errorf("read %s: %w", manifestName, err)
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return "", "", fmt.Errorf("read %s: %w", manifestName, err)
		}
		text = buf.Bytes()
	}
	to := func(declared string) string { return WithLabel(declared, label) }
	if fixed != "" {
		to = func(string) string { return fixed }
	}
	declared, edited := setImplementationVersionTo(text, to)
	version := to(declared)
	signed := false
	for _, f := range zr.File {
		signed = signed || (strings.EqualFold(pathDir(f.Name), "META-INF") && strings.HasSuffix(strings.ToUpper(f.Name), ".SF"))
	}

	stem := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	file := stem + "-" + label + ".jar"
	switch {
	case fixed != "":
		file = artifact + "-" + fixed + ".jar"
	case declared != "" && strings.HasSuffix(stem, "-"+declared):
		file = strings.TrimSuffix(stem, declared) + version + ".jar"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	dst := filepath.Join(dir, file)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", "", err
	}
	defer out.Close()
	if signed {
		// A signature covers the manifest: only the file name changes.
		in, err := os.Open(src)
		if err != nil {
			return "", "", err
		}
		defer in.Close()
		if _, err := io.Copy(out, in); err != nil {
			return "", "", err
		}
		return dst, declared + " (signed jar: manifest unchanged)", out.Close()
	}
	zw := zip.NewWriter(out)
	writeManifest := func(h *zip.FileHeader) error {
		h.Method = zip.Store
		h.Flags &^= 0x8 // sizes in the local header: a stored entry must not use a data descriptor
		h.CRC32 = crc32.ChecksumIEEE(edited)
		h.CompressedSize64, h.UncompressedSize64 = uint64(len(edited)), uint64(len(edited))
		w, err := zw.CreateRaw(h)
		if err == nil {
			_, err = w.Write(edited)
		}
		return err
	}
	if mf == nil {
		// A jar's manifest comes first, where JarInputStream looks for it.
		h := &zip.FileHeader{Name: manifestName, CreatorVersion: 20, ReaderVersion: 20}
		t, _ := time.Parse(time.RFC3339, jarDate)
		//lint:ignore SA1019 CreateRaw writes the MS-DOS date fields as given; it never derives them from Modified.
		h.ModifiedDate, h.ModifiedTime = msdosTime(t)
		if err := writeManifest(h); err != nil {
			return "", "", err
		}
	}
	for _, f := range zr.File {
		switch {
		case f == mf:
			h := f.FileHeader
			err = writeManifest(&h)
		case strings.HasSuffix(f.Name, "/"):
			// A directory holds no data; some tools still store an empty
			// deflate stream, which zip.Writer refuses for directories.
			h := f.FileHeader
			h.Method, h.Flags, h.CRC32 = zip.Store, h.Flags&^0x8, 0
			h.CompressedSize64, h.UncompressedSize64 = 0, 0
			_, err = zw.CreateRaw(&h)
		default:
			err = zw.Copy(f)
		}
		if err != nil {
			return "", "", fmt.Errorf("copy %s: %w", f.Name, err)
		}
	}
	if err := zw.SetComment(zr.Comment); err != nil {
		return "", "", err
	}
	if err := zw.Close(); err != nil {
		return "", "", err
	}
	return dst, version, out.Close()
}

// setImplementationVersion returns the manifest's declared
// Implementation-Version and the manifest with it replaced by the labelled
// version (added if missing). Only the main section is rewritten, with CRLF
// line ends and 72-byte lines; the per-entry sections are kept as they are.
func setImplementationVersion(manifest []byte, label string) (string, []byte) {
	return setImplementationVersionTo(manifest, func(declared string) string { return WithLabel(declared, label) })
}

// setImplementationVersionTo is setImplementationVersion with the new
// version computed by to from the declared one ("" when none).
func setImplementationVersionTo(manifest []byte, to func(declared string) string) (string, []byte) {
	text := strings.ReplaceAll(strings.ReplaceAll(string(manifest), "\r\n", "\n"), "\r", "\n")
	main, rest, _ := strings.Cut(text, "\n\n")
	type attr struct{ name, value string }
	var attrs []attr
	for _, line := range strings.Split(main, "\n") {
		switch {
		case strings.HasPrefix(line, " ") && len(attrs) > 0:
			attrs[len(attrs)-1].value += line[1:]
		case strings.TrimSpace(line) != "":
			name, value, _ := strings.Cut(line, ":")
			attrs = append(attrs, attr{name, strings.TrimPrefix(value, " ")})
		}
	}
	declared, found := "", false
	for i, a := range attrs {
		if strings.EqualFold(a.name, "Implementation-Version") {
			declared, found = strings.TrimSpace(a.value), true
			attrs[i].value = to(declared)
		}
	}
	if !found {
		attrs = append(attrs, attr{"Implementation-Version", to("")})
	}
	if len(attrs) == 0 || !strings.EqualFold(attrs[0].name, "Manifest-Version") {
		attrs = append([]attr{{"Manifest-Version", "1.0"}}, attrs...)
	}
	var b strings.Builder
	for _, a := range attrs {
		line := a.name + ": " + a.value
		for first := true; ; first = false {
			limit := 72
			if !first {
				b.WriteString(" ")
				limit = 71
			}
			if len(line) <= limit {
				b.WriteString(line + "\r\n")
				break
			}
			b.WriteString(line[:limit] + "\r\n")
			line = line[limit:]
		}
	}
	b.WriteString("\r\n")
	if rest = strings.TrimLeft(rest, "\n"); rest != "" {
		b.WriteString(strings.ReplaceAll(rest, "\n", "\r\n"))
	}
	return declared, []byte(b.String())
}

// msdosTime converts t to a zip entry's MS-DOS date and time.
func msdosTime(t time.Time) (date, clock uint16) {
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}
