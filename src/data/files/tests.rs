//! The readers' tests: every format, header and error message, on files made here.

use super::*;

fn parse(format: Format, name: &str, data: &[u8]) -> Result<Vec<Row>> {
    parse_rows(data, format, Path::new(name), &ReadOptions::default())
}

fn tsv(data: &str) -> Result<Vec<Row>> {
    parse(Format::Tsv, "data.tsv", data.as_bytes())
}

fn csv(data: &str) -> Result<Vec<Row>> {
    parse(Format::Csv, "data.csv", data.as_bytes())
}

fn fasttext(data: &str) -> Result<Vec<Row>> {
    parse(Format::FastText, "data.txt", data.as_bytes())
}

fn r(line: usize, text: &str, label: &str) -> Row {
    Row {
        line,
        text: text.to_string(),
        label: label.to_string(),
    }
}

/// The Display of the error, or a panic naming the rows that were read instead.
fn err<T: std::fmt::Debug>(result: Result<Vec<T>>) -> String {
    match result {
        Ok(rows) => panic!("expected an error, read {rows:?}"),
        Err(e) => e.to_string(),
    }
}

/// Every text of `data` read by [`Texts`] as `format`, or the first error.
fn texts(format: Format, name: &str, data: &str) -> Result<Vec<Text>> {
    Texts::new(data.as_bytes(), format, Path::new(name), "text", 1000)?.collect()
}

fn t(line: usize, text: &str) -> Text {
    (line, text.to_string())
}

#[test]
fn texts_of_a_tsv_or_csv_are_its_text_column_label_or_not() {
    let data = "id\tlabel\ttext\n1\tpos\tgood film\n\n2\tneg\t  not good \n";
    assert_eq!(
        texts(Format::Tsv, "d.tsv", data).unwrap(),
        [t(2, "good film"), t(4, "  not good ")]
    );
    // no label column, a byte order mark, Windows line ends
    let data = "\u{feff}text\r\ngood film\r\n\"quoted\" too\r\n";
    assert_eq!(
        texts(Format::Tsv, "d.tsv", data).unwrap(),
        [t(2, "good film"), t(3, "\"quoted\" too")]
    );
    let data = "label,text\npos,\"good, really\"\nneg,\"two\nlines\"\nneg,\n";
    assert_eq!(
        texts(Format::Csv, "d.csv", data).unwrap(),
        [t(2, "good, really"), t(3, "two\nlines"), t(5, "")]
    );
    // a header alone holds no texts
    assert_eq!(texts(Format::Tsv, "d.tsv", "text\tlabel\n").unwrap(), []);
}

#[test]
fn texts_in_fasttext_format_are_lines_without_their_labels() {
    let data = "\u{feff}__label__pos  good film\n\n  plain text \r\n__label__a __label__b x\n";
    assert_eq!(
        texts(Format::FastText, "d.txt", data).unwrap(),
        [t(1, "good film"), t(2, ""), t(3, "plain text "), t(4, "x")]
    );
    assert_eq!(texts(Format::FastText, "d.txt", "").unwrap(), []);
}

#[test]
fn texts_errors_name_the_line_and_stop_the_reading() {
    assert_eq!(
        err(texts(Format::Tsv, "d.tsv", "review\tlabel\nhi\tx\n")),
        "d.tsv line 1: the header has no \"text\" column (it has: review, label); pick one \
         with text_col"
    );
    assert_eq!(
        err(texts(Format::Tsv, "d.tsv", "\n \n")),
        "d.tsv: no header row (the file is empty or blank)"
    );
    let mut read = Texts::new(
        "text\tlabel\na\tx\nb\n c\tx\n".as_bytes(),
        Format::Tsv,
        Path::new("d.tsv"),
        "text",
        1000,
    )
    .unwrap();
    assert_eq!(read.next().unwrap().unwrap(), t(2, "a"));
    assert_eq!(
        read.next().unwrap().unwrap_err().to_string(),
        "d.tsv line 3: expected 2 fields, found 1"
    );
    assert!(read.next().is_none(), "nothing is read after an error");
    let read = Texts::new(&b"a\n\xff\n"[..], Format::FastText, "stdin".as_ref(), "", 9);
    assert_eq!(
        err(read.unwrap().collect::<Result<Vec<_>>>()),
        "stdin line 2: invalid UTF-8"
    );
}

#[test]
fn fasttext_labels_are_stripped() {
    assert_eq!(strip_labels("__label__pos  very good"), "very good");
    assert_eq!(
        strip_labels("__label__a __label__b x __label__c"),
        "x __label__c"
    );
    assert_eq!(strip_labels("  plain text "), "plain text ");
    assert_eq!(strip_labels("__label__only"), "");
}

#[test]
fn format_follows_the_extension_in_any_case() {
    assert_eq!(Format::of(Path::new("a/data.TSV")), Format::Tsv);
    assert_eq!(Format::of(Path::new("data.tsv")), Format::Tsv);
    assert_eq!(Format::of(Path::new("data.csv")), Format::Csv);
    assert_eq!(Format::of(Path::new("data.Csv")), Format::Csv);
    assert_eq!(Format::of(Path::new("data.txt")), Format::FastText);
    assert_eq!(Format::of(Path::new("data")), Format::FastText);
    assert_eq!(Format::of(Path::new("data.tsv.gz")), Format::FastText);
    assert_eq!(Format::of(Path::new(".tsv")), Format::FastText);
}

#[test]
fn columns_default_to_text_and_label() {
    let columns = Columns::default();
    assert_eq!(
        (columns.text.as_str(), columns.label.as_str()),
        ("text", "label")
    );
}

#[test]
fn tsv_columns_in_any_order_and_extra_columns_ignored() {
    let rows = tsv("id\tlabel\ttext\n1\tpos\tgood film\n2\t neg \t  not good \n").unwrap();
    assert_eq!(rows, [r(2, "good film", "pos"), r(3, "  not good ", "neg")]);
}

#[test]
fn tsv_quotes_are_ordinary_characters() {
    let rows = tsv("text\tlabel\n\"great\" film\tpos\nhe said \"meh\tneg\n\"\"\tneu\n").unwrap();
    assert_eq!(
        rows,
        [
            r(2, "\"great\" film", "pos"),
            r(3, "he said \"meh", "neg"),
            r(4, "\"\"", "neu"),
        ]
    );
}

#[test]
fn tsv_blank_lines_are_skipped_and_lines_stay_physical() {
    let rows = tsv("\n\ntext\tlabel\n\na\tx\n\r\n   \n\nb\ty\n\n").unwrap();
    assert_eq!(rows, [r(5, "a", "x"), r(9, "b", "y")]);
    // Line numbers after blank lines are right in errors too.
    assert_eq!(
        err(tsv("text\tlabel\n\n\na\tx\n\n\nshort\n")),
        "data.tsv line 7: expected 2 fields, found 1"
    );
}

#[test]
fn tsv_without_a_final_newline() {
    assert_eq!(tsv("text\tlabel\na\tx").unwrap(), [r(2, "a", "x")]);
    assert_eq!(
        err(tsv("text\tlabel\na\tx\nb\t")),
        "data.tsv line 3: empty label"
    );
}

#[test]
fn shards_partition_the_rows_and_every_row_is_still_checked() {
    let data = "text\tlabel\na\tx\n\nb\ty\nc\tx\nd\ty\ne\tx\n";
    let read = |index, count, data: &str| {
        let options = ReadOptions {
            shard: Some(Shard { index, count }),
            ..ReadOptions::default()
        };
        parse_rows(data.as_bytes(), Format::Tsv, "data.tsv".as_ref(), &options)
    };
    let texts = |rows: Vec<Row>| rows.into_iter().map(|r| r.text).collect::<Vec<_>>();
    // the blank line is not a row: rows 0, 2, 4 and 1, 3
    assert_eq!(texts(read(0, 2, data).unwrap()), ["a", "c", "e"]);
    assert_eq!(texts(read(1, 2, data).unwrap()), ["b", "d"]);
    // lines keep their numbers
    assert_eq!(read(1, 2, data).unwrap()[0].line, 4);
    // a shard without rows is not an error; a bad row in another shard is
    assert!(read(7, 8, data).unwrap().is_empty());
    let bad = "text\tlabel\na\tx\nb\t\n";
    let err = read(0, 2, bad).unwrap_err().to_string();
    assert!(
        err.contains("line 3") && err.contains("empty label"),
        "{err}"
    );
    let fasttext = "__label__x a\n__label__y b\n__label__x c\n";
    let options = ReadOptions {
        shard: Some(Shard { index: 1, count: 2 }),
        ..ReadOptions::default()
    };
    let rows = parse_rows(
        fasttext.as_bytes(),
        Format::FastText,
        "d.txt".as_ref(),
        &options,
    );
    assert_eq!(texts(rows.unwrap()), ["b"]);
}

#[test]
fn crlf_line_endings_leave_no_carriage_return() {
    let rows = tsv("text\tlabel\r\ngood\tpos\r\n\r\nbad\tneg\r\n").unwrap();
    assert_eq!(rows, [r(2, "good", "pos"), r(4, "bad", "neg")]);
    // The label is the last column: its '\r' must go even though the text keeps its spaces.
    let rows = tsv("label\ttext\r\npos\tgood \r\n").unwrap();
    assert_eq!(rows, [r(2, "good ", "pos")]);
    let rows = csv("text,label\r\n\"a,b\",pos\r\n\"c\",\"neg\"\r\n").unwrap();
    assert_eq!(rows, [r(2, "a,b", "pos"), r(3, "c", "neg")]);
}

#[test]
fn csv_quoting_commas_doubled_quotes_and_newlines() {
    let data = "label,text\n\
                pos,\"good, really\"\n\
                neg,\"he said \"\"bad\"\"\"\n\
                pos,\"line one\nline two\n\nline four\"\n\
                neg,plain\n";
    assert_eq!(
        csv(data).unwrap(),
        [
            r(2, "good, really", "pos"),
            r(3, "he said \"bad\"", "neg"),
            r(4, "line one\nline two\n\nline four", "pos"),
            r(8, "plain", "neg"),
        ]
    );
    // An error after a multi-line field names the right line.
    let data = "text,label\n\"a\nb\nc\",x\nd\n";
    assert_eq!(
        err(csv(data)),
        "data.csv line 5: expected 2 fields, found 1"
    );
}

#[test]
fn custom_column_names() {
    let columns = ReadOptions {
        columns: Columns {
            text: "review".to_string(),
            label: "sentiment".to_string(),
        },
        ..ReadOptions::default()
    };
    let data = b"sentiment,id,review\npos,1,nice\n";
    let rows = parse_rows(&data[..], Format::Csv, Path::new("d.csv"), &columns).unwrap();
    assert_eq!(rows, [r(2, "nice", "pos")]);
}

#[test]
fn header_names_are_trimmed_and_a_bom_is_dropped() {
    assert_eq!(
        tsv("\u{feff}text\t label \nhi\tx\n").unwrap(),
        [r(2, "hi", "x")]
    );
    assert_eq!(
        csv("\u{feff}\"label\",text\nx,hi\n").unwrap(),
        [r(2, "hi", "x")]
    );
    // A BOM before a blank first line still counts lines right.
    assert_eq!(
        tsv("\u{feff}\ntext\tlabel\nhi\tx\n").unwrap(),
        [r(3, "hi", "x")]
    );
}

#[test]
fn a_missing_column_names_the_flag_and_lists_the_header() {
    assert_eq!(
        err(tsv("id\ttext\tsentiment\n1\thi\tpos\n")),
        "data.tsv line 1: the header has no \"label\" column (it has: id, text, sentiment); \
         pick one with label_col"
    );
    assert_eq!(
        err(csv("review,label\nhi,pos\n")),
        "data.csv line 1: the header has no \"text\" column (it has: review, label); \
         pick one with text_col"
    );
    // A header on a later line (after blank lines) is named by that line.
    assert_eq!(
        err(tsv("\ntext\n")),
        "data.tsv line 2: the header has no \"label\" column (it has: text); \
         pick one with label_col"
    );
}

#[test]
fn a_first_line_without_a_label_says_what_chose_fasttext_and_which_format_fits() {
    // Issue 27: a TSV file named .txt got only "no __label__ at the start of the line".
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str, data: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let e = read_rows(&path, &ReadOptions::default()).unwrap_err();
        let message = e.to_string();
        message[dir.path().to_str().unwrap().len() + 1..].to_string()
    };
    assert_eq!(
        read("data.txt", "text\tlabel\ngood\tpos\n"),
        "data.txt line 1: no __label__ at the start of the line: the file is read in \
         fastText's format (`__label__NAME text` a line) because its name does not end in \
         .tsv or .csv; the line has tabs: for a TSV file, use format tsv"
    );
    assert_eq!(
        read("reviews", "\n\ntext,label\n"),
        "reviews line 3: no __label__ at the start of the line: the file is read in \
         fastText's format (`__label__NAME text` a line) because its name does not end in \
         .tsv or .csv; the line has commas: for a CSV file, use format csv"
    );
    assert_eq!(
        read("notes.txt", "just some words\n"),
        "notes.txt line 1: no __label__ at the start of the line: the file is read in \
         fastText's format (`__label__NAME text` a line) because its name does not end in \
         .tsv or .csv"
    );
    // Asked for fastText's format, the message says what it is; after a good line, a
    // bad one is only a bad line.
    assert_eq!(
        err(fasttext("a\tb\n")),
        "data.txt line 1: no __label__ at the start of the line (fastText's format \
         (`__label__NAME text` a line)); the line has tabs: for a TSV file, use format tsv"
    );
    assert_eq!(
        err(fasttext("__label__a x\ny\tz\n")),
        "data.txt line 2: no __label__ at the start of the line"
    );
}

#[test]
fn a_first_row_that_looks_like_data_is_not_taken_for_a_header() {
    // Issue 27: the whole first row was shown as "the header", with only --text-col to try.
    assert_eq!(
        err(tsv("the food was good\tpositive\nbad\tnegative\n")),
        "data.tsv line 1: the first row, \"the food was good\\tpositive\", looks like data, \
         not a header naming the columns; add the line \"text<TAB>label\" at the top (or, if \
         it is the header, pick the columns with text_col and label_col)"
    );
    // the suggested header follows the row's order, in the file's separator
    assert_eq!(
        err(csv("positive,not bad\n")),
        "data.csv line 1: the first row, \"positive,not bad\", looks like data, not a \
         header naming the columns; add the line \"label,text\" at the top (or, if it is the \
         header, pick the columns with text_col and label_col)"
    );
    // a number is no column name
    assert!(err(tsv("3\tgreat\n")).contains("add the line \"label<TAB>text\" at the top"));
    assert!(err(tsv("7\tgreat film\tpos\n")).contains(
        "add a line at the top that names the text column \"text\" and the label \
             column \"label\""
    ));
    // A long row is quoted up to 80 characters.
    let long = format!("{}\tpos\n", "word ".repeat(40));
    let quoted = format!("\"{}…\"", "word ".repeat(16).trim_end_matches(' '));
    assert_eq!(quoted.chars().count(), 80 + 2, "80 characters in quotes");
    let message = err(tsv(&long));
    assert!(
        message.contains(&format!("first row, {quoted}, looks")),
        "{message}"
    );
    // For predicting, one text a line without a header.
    let message = err(texts(Format::Tsv, "d.tsv", "the food was good\nbad\n"));
    assert_eq!(
        message,
        "d.tsv line 1: the first row, \"the food was good\", looks like data, not a header \
         naming the columns; add the line \"text\" at the top (or, if it is the header, \
         pick the columns with text_col)"
    );
    // Names that are names are listed as before, up to 80 characters.
    let names: Vec<String> = (0..20).map(|i| format!("column_{i:02}")).collect();
    let message = err(tsv(&format!("{}\n", names.join("\t"))));
    let listed = format!("{}…", &names.join(", ")[..79]);
    assert_eq!(
        message,
        format!(
            "data.tsv line 1: the header has no \"text\" column (it has: {listed}); pick \
             one with text_col"
        )
    );
}

#[test]
fn ambiguous_columns_are_errors() {
    assert_eq!(
        err(tsv("text\tlabel\ttext\na\tb\tc\n")),
        "data.tsv line 1: the header has several \"text\" columns"
    );
    let same = ReadOptions {
        columns: Columns {
            text: "x".to_string(),
            label: "x".to_string(),
        },
        ..ReadOptions::default()
    };
    let e = parse_rows(&b"x\ny\n"[..], Format::Tsv, Path::new("d.tsv"), &same).unwrap_err();
    assert_eq!(
        e.to_string(),
        "text_col and label_col both name the column \"x\""
    );
}

#[test]
fn a_row_with_the_wrong_number_of_fields_names_its_line() {
    assert_eq!(
        err(tsv("id\ttext\tlabel\n1\ta\tx\n2\tb\n")),
        "data.tsv line 3: expected 3 fields, found 2"
    );
    assert_eq!(
        err(tsv("id\ttext\tlabel\n1\ta\tx\textra\n")),
        "data.tsv line 2: expected 3 fields, found 4"
    );
    // In a CSV file, a field too many is most likely an unquoted comma (issue 27).
    assert_eq!(
        err(csv("text,label\ngood, really,pos\n")),
        "data.csv line 2: expected 2 fields, found 3; a field that holds a comma must be in \
         double quotes (\"good, really\"), or the file written as TSV"
    );
    assert_eq!(
        err(csv("id,text,label\n1,a\n")),
        "data.csv line 2: expected 3 fields, found 2"
    );
}

#[test]
fn invalid_utf8_names_its_line() {
    let data = b"text\tlabel\ngood\tpos\nbad \xff\tneg\n";
    assert_eq!(
        err(parse(Format::Tsv, "data.tsv", data)),
        "data.tsv line 3: invalid UTF-8"
    );
    // In a column that is not used, too.
    let data = b"id\ttext\tlabel\n1\tgood\tpos\n\xc3\tbad\tneg\n";
    assert_eq!(
        err(parse(Format::Tsv, "data.tsv", data)),
        "data.tsv line 3: invalid UTF-8"
    );
    let data = b"text,label\n\"a\nb\xe2\x82\",neg\n";
    assert_eq!(
        err(parse(Format::Csv, "data.csv", data)),
        "data.csv line 2: invalid UTF-8"
    );
    let data = b"te\xffxt\tlabel\n";
    assert_eq!(
        err(parse(Format::Tsv, "data.tsv", data)),
        "data.tsv line 1: invalid UTF-8"
    );
}

#[test]
fn an_empty_text_is_an_example_and_an_empty_label_an_error() {
    let rows = tsv("text\tlabel\na\tx\n  \ty\n").unwrap();
    assert_eq!(
        (rows[1].line, rows[1].text.as_str(), rows[1].label.as_str()),
        (3, "  ", "y")
    );
    assert_eq!(
        err(tsv("text\tlabel\na\t \n")),
        "data.tsv line 2: empty label"
    );
    assert_eq!(csv("text,label\n\"\",x\n").unwrap()[0].text, "");
}

#[test]
fn files_without_examples() {
    assert_eq!(err(tsv("")), "data.tsv: no examples (the file is empty)");
    assert_eq!(
        err(csv("\u{feff}")),
        "data.csv: no examples (the file is empty)"
    );
    assert_eq!(
        err(fasttext("")),
        "data.txt: no examples (the file is empty)"
    );
    assert_eq!(
        err(tsv("text\tlabel\n")),
        "data.tsv: no examples after the header"
    );
    assert_eq!(
        err(csv("text,label\r\n\r\n\n")),
        "data.csv: no examples after the header"
    );
    assert_eq!(
        err(tsv("\n \n")),
        "data.tsv: no examples (the file has only blank lines)"
    );
    assert_eq!(
        err(fasttext("\n\r\n  \n")),
        "data.txt: no examples (the file has only blank lines)"
    );
}

#[test]
fn fasttext_one_label_per_line() {
    let rows = fasttext(
        "__label__pos  good film \n__label__neg\tbad\r\n  __label__neg not __label__x at all\n",
    )
    .unwrap();
    assert_eq!(
        rows,
        [
            r(1, "good film", "pos"),
            r(2, "bad", "neg"),
            r(3, "not __label__x at all", "neg"),
        ]
    );
}

#[test]
fn fasttext_blank_lines_are_skipped_and_lines_stay_physical() {
    let rows = fasttext("\n__label__a x\n\r\n   \n__label__b y").unwrap();
    assert_eq!(rows, [r(2, "x", "a"), r(5, "y", "b")]);
    let rows = parse(Format::FastText, "data.txt", b"\xEF\xBB\xBF__label__a x\n").unwrap();
    assert_eq!(rows, [r(1, "x", "a")]);
}

#[test]
fn fasttext_malformed_lines() {
    assert_eq!(
        err(fasttext("__label__a x\n\n__label__a __label__b y\n")),
        "data.txt line 3: several labels on one line (multi-label data is not supported)"
    );
    assert_eq!(
        err(fasttext("__label__a x\nno label here\n")),
        "data.txt line 2: no __label__ at the start of the line"
    );
    assert_eq!(
        err(fasttext("x __label__a\n")),
        "data.txt line 1: no __label__ at the start of the line (fastText's format \
         (`__label__NAME text` a line))"
    );
    assert_eq!(
        err(fasttext("__label__ x\n")),
        "data.txt line 1: empty label"
    );
    assert_eq!(fasttext("__label__a   \n").unwrap()[0].text, "");
    assert_eq!(
        err(parse(
            Format::FastText,
            "data.txt",
            b"__label__a x\n__label__b \xc3(\n"
        )),
        "data.txt line 2: invalid UTF-8"
    );
}

#[test]
fn read_rows_reads_a_file_by_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.CSV");
    std::fs::write(&path, "label,text\npos,\"a, b\"\nneg,c\n").unwrap();
    assert_eq!(
        read_rows(&path, &ReadOptions::default()).unwrap(),
        [r(2, "a, b", "pos"), r(3, "c", "neg")]
    );
    let path = dir.path().join("data.train");
    std::fs::write(&path, "__label__pos a, b\n").unwrap();
    assert_eq!(
        read_rows(&path, &ReadOptions::default()).unwrap(),
        [r(1, "a, b", "pos")]
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.tsv");
    let e = read_rows(&path, &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::Io { path: p, .. } if *p == path),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{}: No such file or directory (os error 2)", path.display())
    );
    // A directory opens but is no data file.
    let e = read_rows(dir.path(), &ReadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: a directory, not a data file", dir.path().display())
    );
}

#[test]
fn read_errors_while_reading_rows_are_io_errors() {
    /// Gives `data`, then fails.
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let cases: [(Format, &[u8]); 3] = [
        (Format::Tsv, b"text\tlabel\na\tb\n"),
        (Format::Csv, b"text,label\na,b\n"),
        (Format::FastText, b"__label__a b\n"),
    ];
    for (format, data) in cases {
        let reader = Failing(data);
        let e = parse_rows(reader, format, Path::new("d"), &ReadOptions::default()).unwrap_err();
        assert!(matches!(&e, Error::Io { .. }), "{format:?}: {e:?}");
        assert_eq!(e.to_string(), "d: disk on fire");
    }
}

#[test]
fn a_long_file_is_read_in_one_pass() {
    let mut data = String::from("text\tlabel\n");
    for i in 0..20_000 {
        data.push_str(&format!("word {i} \"quoted\"\t{}\n", i % 3));
    }
    let rows = tsv(&data).unwrap();
    assert_eq!(rows.len(), 20_000);
    assert_eq!(rows[19_999], r(20_001, "word 19999 \"quoted\"", "1"));
}
