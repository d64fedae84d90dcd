#include "core/template.hpp"

#include <algorithm>

namespace vigil::core {

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

Template Template::parse(std::string_view text, const std::set<std::string>& names) {
    Template t;
    std::vector<size_t> open;  // indices of the sections not closed yet
    auto line_of = [&](size_t at) { return 1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'); };
    auto fail = [&](size_t at, const std::string& what) {
        throw TemplateError("line " + std::to_string(line_of(at)) + ": " + what);
    };
    size_t pos = 0;
    while (pos < text.size()) {
        const size_t start = text.find("{{", pos);
        if (start == std::string_view::npos) {
            t.pieces_.push_back({Kind::text, std::string(text.substr(pos))});
            break;
        }
        if (start > pos) t.pieces_.push_back({Kind::text, std::string(text.substr(pos, start - pos))});
        const size_t end = text.find("}}", start + 2);
        if (end == std::string_view::npos) fail(start, "{{ is not closed by }}");
        std::string_view inner = text.substr(start + 2, end - start - 2);
        while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
        while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
        Kind kind = Kind::value;
        if (!inner.empty() && (inner.front() == '#' || inner.front() == '^' || inner.front() == '/')) {
            kind = inner.front() == '#' ? Kind::open : inner.front() == '^' ? Kind::open_not : Kind::close;
            inner.remove_prefix(1);
        }
        const std::string name(inner);
        if (!names.count(name)) {
            std::string known;
            for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
            fail(start, "unknown variable {{" + std::string(text.substr(start + 2, end - start - 2)) + "}} (known: " +
                            known + ")");
        }
        if (kind == Kind::open || kind == Kind::open_not) open.push_back(t.pieces_.size());
        if (kind == Kind::close) {
            if (open.empty() || t.pieces_[open.back()].text != name)
                fail(start, "{{/" + name + "}} closes no {{#" + name + "}} or {{^" + name + "}}");
            t.pieces_[open.back()].skip = t.pieces_.size();
            open.pop_back();
        }
        t.pieces_.push_back({kind, name});
        pos = end + 2;
    }
    if (!open.empty())
        fail(text.size(), "the section {{" + std::string(t.pieces_[open.back()].kind == Kind::open ? "#" : "^") +
                              t.pieces_[open.back()].text + "}} is not closed by {{/" + t.pieces_[open.back()].text + "}}");
    return t;
}

std::string Template::render(const std::map<std::string, std::string>& values, const std::set<std::string>& html) const {
    std::string out;
    auto value = [&](const std::string& name) -> const std::string& {
        static const std::string none;
        auto it = values.find(name);
        return it == values.end() ? none : it->second;
    };
    for (size_t i = 0; i < pieces_.size(); ++i) {
        const Piece& p = pieces_[i];
        switch (p.kind) {
            case Kind::text: out += p.text; break;
            case Kind::value: out += html.count(p.text) ? value(p.text) : html_escape(value(p.text)); break;
            case Kind::open:
                if (value(p.text).empty()) i = p.skip;
                break;
            case Kind::open_not:
                if (!value(p.text).empty()) i = p.skip;
                break;
            case Kind::close: break;
        }
    }
    return out;
}

}  // namespace vigil::core
