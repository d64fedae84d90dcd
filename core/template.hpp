// Page templates an administrator writes ([pages] template_dir): text with `{{name}}`, replaced
// by the value HTML-escaped, `{{#name}}...{{/name}}`, kept only when the value is not empty, and
// `{{^name}}...{{/name}}`, kept only when it is. No raw insertion except the names the caller marks as HTML it made itself, no loops,
// no code: a template cannot put a client's bytes on a page unescaped. Parsed once; an unknown
// name or an unbalanced section is an error naming the line.
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::core {

struct TemplateError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Template {
public:
    // Throws TemplateError "line N: ..." for a name not in `names`, an unclosed `{{`, or a section
    // that does not close (or closes another).
    static Template parse(std::string_view text, const std::set<std::string>& names);

    // `values` by name (a missing one is empty); those in `html` are inserted as given (the
    // caller escaped them), every other value is HTML-escaped here.
    std::string render(const std::map<std::string, std::string>& values, const std::set<std::string>& html = {}) const;

private:
    enum class Kind { text, value, open, open_not, close };
    struct Piece {
        Kind kind;
        std::string text;  // the text, or the name
        size_t skip = 0;   // open, open_not: the index of its close
    };
    std::vector<Piece> pieces_;
};

// &, <, >, " and ' as entities: safe in element text and in quoted attributes.
std::string html_escape(std::string_view s);

}  // namespace vigil::core
