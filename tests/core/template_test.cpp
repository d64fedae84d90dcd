// Page templates: values escaped, sections, and errors that name the line.
#include <gtest/gtest.h>

#include "core/template.hpp"

using vigil::core::Template;
using vigil::core::TemplateError;

namespace {
const std::set<std::string> kNames = {"title", "rule", "facts"};
}

TEST(Template, ValuesAreEscapedExceptTheCallersHtml) {
    auto t = Template::parse("<h1>{{title}}</h1><dl>{{ facts }}</dl>", kNames);
    EXPECT_EQ(t.render({{"title", "<script>alert('x')</script> & \"q\""}, {"facts", "<dt>a</dt>"}}, {"facts"}),
              "<h1>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</h1><dl><dt>a</dt></dl>");
    // Without the caller saying so, HTML is text.
    EXPECT_EQ(t.render({{"facts", "<dt>a</dt>"}}), "<h1></h1><dl>&lt;dt&gt;a&lt;/dt&gt;</dl>");
}

TEST(Template, SectionsShowOnlyWhenTheValueIsOrIsNotEmpty) {
    auto t = Template::parse("{{#rule}}rule {{rule}}{{#title}} in {{title}}{{/title}}.{{/rule}}{{^rule}}no rule{{/rule}}",
                             kNames);
    EXPECT_EQ(t.render({{"rule", "r1"}, {"title", "T"}}), "rule r1 in T.");
    EXPECT_EQ(t.render({{"rule", "r1"}}), "rule r1.");
    EXPECT_EQ(t.render({}), "no rule");
}

TEST(Template, MistakesNameTheLine) {
    auto error = [](const std::string& text) {
        try {
            Template::parse(text, kNames);
        } catch (const TemplateError& e) {
            return std::string(e.what());
        }
        return std::string("parsed");
    };
    EXPECT_EQ(error("a\nb {{titel}}"), "line 2: unknown variable {{titel}} (known: facts, rule, title)");
    EXPECT_EQ(error("{{#rule}}\n\nx"), "line 3: the section {{#rule}} is not closed by {{/rule}}");
    EXPECT_EQ(error("{{#rule}}{{/title}}"), "line 1: {{/title}} closes no {{#title}} or {{^title}}");
    EXPECT_EQ(error("x\n{{title"), "line 2: {{ is not closed by }}");
    EXPECT_EQ(error("{{{title}}}"), "line 1: unknown variable {{{title}} (known: facts, rule, title)");
    EXPECT_EQ(error("plain { text } and {single}"), "parsed");
}
