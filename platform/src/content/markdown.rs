//! Rule pages: Markdown (CommonMark with tables and strikethrough, by `pulldown-cmark`)
//! rendered to HTML, then sanitised by `ammonia` (an allow-list of tags, attributes and
//! URL schemes built on html5ever's parser): `<script>`, event handlers (`onerror=`),
//! `style`, `javascript:` and `data:` links never reach a member's page, whether written
//! as Markdown or as raw HTML inside it. Links get `rel="noopener noreferrer"`.

use pulldown_cmark::{Options, Parser, html};

/// Markdown to sanitised HTML.
pub fn render(markdown: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, opts));
    let mut schemes = std::collections::HashSet::new();
    schemes.extend(["http", "https", "mailto", "tel"]);
    ammonia::Builder::default().url_schemes(schemes).clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_becomes_html() {
        let h = render("# 积分规则\n\n- 每消费 **1 元** 得 1 积分\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(h.contains("<h1>积分规则</h1>") && h.contains("<strong>1 元</strong>") && h.contains("<table>"), "{h}");
    }

    #[test]
    fn scripts_handlers_and_javascript_links_never_survive() {
        let evil = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) \
                    [d](data:text/html,x) <a href=\"JaVaScRiPt:alert(4)\">x</a> <iframe src=\"https://e.example\"></iframe>\
                    <p style=\"x\" onclick=\"y\">p</p> <svg onload=alert(5)></svg>";
        let h = render(evil).to_lowercase();
        for bad in ["<script", "onerror", "javascript:", "data:", "<iframe", "onclick", "style=", "<svg", "onload"] {
            assert!(!h.contains(bad), "{bad} in {h}");
        }
        assert!(render("[a](https://example.com)").contains("rel=\"noopener noreferrer\""));
    }
}
