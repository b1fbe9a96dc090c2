//! Escaping text for the XML files of launchd and Task Scheduler. Values
//! reach here through `plain_text`, which has already refused the control
//! characters XML 1.0 cannot carry.

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub mod read_back {
    //! The tests' way to check a generated file: parse it with a real XML
    //! parser and flatten it into (element path, text) pairs.

    use quick_xml::events::Event;

    /// Every element's text, by its path from the root (`a/b/c`), in
    /// document order; also the comments, under the path `#comment`.
    pub fn texts(xml: &str) -> Vec<(String, String)> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut out = Vec::new();
        // Text arrives in pieces split at each `&...;`: joined here.
        let mut text = String::new();
        loop {
            let event = reader.read_event().expect("well-formed XML");
            match &event {
                Event::Text(t) => {
                    text.push_str(&t.decode().expect("text"));
                    continue;
                }
                Event::GeneralRef(r) => {
                    let name = r.decode().expect("reference");
                    let value = quick_xml::escape::unescape(&format!("&{name};"))
                        .expect("known entity")
                        .into_owned();
                    text.push_str(&value);
                    continue;
                }
                _ => {}
            }
            if !text.trim().is_empty() {
                out.push((path.join("/"), std::mem::take(&mut text)));
            }
            text.clear();
            match event {
                Event::Start(e) => {
                    path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                }
                Event::End(_) => {
                    path.pop();
                }
                Event::Empty(e) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    out.push((format!("{}/{name}", path.join("/")), String::new()));
                }
                Event::Comment(c) => {
                    out.push(("#comment".into(), String::from_utf8_lossy(&c).into_owned()));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_marker_fits_in_an_xml_comment_and_on_one_line() {
        let marker = crate::service::MARKER;
        assert!(!marker.contains("--") && !marker.contains('\n') && !marker.ends_with('-'));
    }

    #[test]
    fn escaped_text_reads_back_as_itself() {
        let nasty = r#"a&b<c>d"e'f &amp; ]]>"#;
        let doc = format!("<r><v>{}</v></r>", super::escape(nasty));
        assert_eq!(texts(&doc), vec![("r/v".to_string(), nasty.to_string())]);
    }
}
