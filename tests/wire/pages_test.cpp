// Vigil's pages: every interpolated value escaped, the organisation's branding, the request-access
// link filled and URL-encoded, no status code on a warning.
#include "wire/pages.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace vigil::wire {
namespace {

PageInfo blocked() {
    PageInfo p;
    p.status = 403;
    p.title = "This page is blocked";
    p.reason = "category <gambling>";
    p.host = "https://casino.example/?a=1&b=<2>";
    p.code = "blocked";
    p.category = "gambling";
    p.transaction = "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17";
    p.action = PageAction::block;
    return p;
}

TEST(Pages, EverythingInterpolatedIsEscaped) {
    const std::string html = render_page(blocked());
    EXPECT_EQ(html.find("<gambling>"), std::string::npos);
    EXPECT_NE(html.find("category &lt;gambling&gt;"), std::string::npos);
    EXPECT_NE(html.find("b=&lt;2&gt;"), std::string::npos);
    EXPECT_NE(html.find(R"(id="transaction">0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17<)"), std::string::npos);
    EXPECT_NE(html.find("contact your IT team"), std::string::npos);
    EXPECT_EQ(html.find("id=\"brand\""), std::string::npos);  // no branding configured: none shown
}

TEST(Pages, BrandingAndRequestAccess) {
    Branding b{"Acme <IT>", "data:image/png;base64,iVBORw0KGgo=", "https://help.acme.example/proxy",
               "https://it.acme.example/access?site={url}&cat={category}&ref={transaction}"};
    const std::string html = render_page(blocked(), b);
    EXPECT_NE(html.find(R"(<strong id="organisation">Acme &lt;IT&gt;</strong>)"), std::string::npos);
    EXPECT_NE(html.find(R"(src="data:image/png;base64,iVBORw0KGgo=")"), std::string::npos);
    EXPECT_NE(html.find(R"(href="https://help.acme.example/proxy">contact Acme &lt;IT&gt;</a>)"), std::string::npos);
    EXPECT_NE(html.find("https://it.acme.example/access?site=https%3A%2F%2Fcasino.example%2F%3Fa%3D1%26b%3D%3C2%3E"
                        "&amp;cat=gambling&amp;ref=0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17"),
              std::string::npos)
        << html;
    PageInfo warn = blocked();
    warn.action = PageAction::warn;
    warn.code = "warn";
    const std::string w = render_page(warn, b);
    EXPECT_EQ(w.find("<dt>Status</dt>"), std::string::npos);  // no status-code jargon on a warning
    EXPECT_EQ(w.find("request-access"), std::string::npos);   // asking for access is for blocks
    EXPECT_NE(render_page(blocked(), b).find("<dt>Status</dt><dd>403</dd>"), std::string::npos);
}

TEST(Pages, EveryDocumentedVariableHasAValue) {
    const auto values = page_values(blocked(), Branding{"Acme", "", "https://help.example/", ""});
    for (const auto& name : config::page_variables()) EXPECT_TRUE(values.count(name)) << name;
    for (const auto& [name, value] : values) EXPECT_TRUE(config::page_variables().count(name)) << name;
    EXPECT_EQ(values.at("reference"), "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17");
    EXPECT_EQ(values.at("contact"), "Acme");
    EXPECT_NE(values.at("details").find("<dt>Category</dt>"), std::string::npos);
}

TEST(Pages, AnAdministratorsTemplateReplacesTheBuiltInPage) {
    const auto t = core::Template::parse(
        "<p>{{organisation}}: {{address}} is blocked ({{category}}). Ref {{reference}}</p>{{#continue_url}}x{{/continue_url}}",
        config::page_variables());
    Branding b{"Acme", "", "", ""};
    b.page = &t;
    EXPECT_EQ(render_page(blocked(), b),
              "<p>Acme: https://casino.example/?a=1&amp;b=&lt;2&gt; is blocked (gambling). Ref "
              "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17</p>");
}

TEST(Pages, UrlEncodingKeepsOnlyUnreserved) {
    EXPECT_EQ(url_encode("a-Z_0.9~"), "a-Z_0.9~");
    EXPECT_EQ(url_encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
    EXPECT_EQ(url_encode("\xC3\xA9"), "%C3%A9");
}

}  // namespace
}  // namespace vigil::wire
