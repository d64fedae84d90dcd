// vigil-rules' grammar on CLI11 (core/cli.hpp): every command, its options, their values.
#include <CLI/CLI.hpp>

#include "rules/cli_args.hpp"

namespace vigil::rules::cli {

using core::cli::flag;

// The grammar: every command and the options it takes. An option a command does not take is an
// error (exit 2, nothing changed): a typo such as --categroy once turned a policy for one
// category into a policy for everything.
void declare(CLI::App& app) {
    app.description(
        "Keeps Vigil's rule database: categories, host entries, URL patterns, RE2 signatures, policies.\n"
        "Every change is one transaction, validated before it is written, recorded in the history, and\n"
        "printed (what changed, rule by rule, and the new ruleset version).");
    app.require_subcommand(1);
    app.add_option("--db", "the rule database (SQLite)")->required()->type_name("FILE");
    app.add_option("--actor", "recorded in the history (default $USER)")->type_name("NAME");

    app.add_subcommand("init", "create an empty database (idempotent)");

    auto* import = app.add_subcommand("import", "import rules from a file or a UT1 folder");
    import->add_option("FILE", "the file (or folder, for ut1)")->required();
    import->add_option("--format", "json (native), csv, hosts, domains, adblock, ut1 (default: from the file)")
        ->check(CLI::IsMember({"json", "csv", "hosts", "domains", "adblock", "ut1"}));
    import->add_option("--category", "the category of a hosts, domains or adblock list");
    flag(*import, "--lenient", "skip (and count) lines that cannot be used instead of refusing the file");
    auto cost_options = [](CLI::App* c) {
        flag(*c, "--force", "write signatures even when they would scan below the floor (with a warning)");
        c->add_option("--scan-floor", "MB/s on the built-in sample below which signatures are refused (default 50)")
            ->check(CLI::PositiveNumber);
    };
    cost_options(import);
    import->footer("Prints how many lines were used and skipped, by reason. Strict by default: a line that "
                   "cannot be used refuses the whole file and nothing is written.");

    app.add_subcommand("export", "the rules as native JSON")->add_option("--out", "write to FILE (default stdout)")->type_name("FILE");
    auto* publish = app.add_subcommand("publish", "a signed ruleset bundle for gateways with rules.source (docs/scale-out.md)");
    publish->add_option("--key", "Ed25519 private key, PEM (openssl genpkey -algorithm ed25519)")->required()->type_name("FILE");
    publish->add_option("--out", "the bundle, written whole (a temporary file renamed)")->required()->type_name("FILE");

    auto* add = app.add_subcommand("add", "add a rule")->require_subcommand(1);
    cost_options(add);
    auto* category = add->add_subcommand("category", "a category");
    category->add_option("NAME", "")->required();
    category->add_option("--description", "");
    auto* host = add->add_subcommand("host", "a host entry: example.com | *.example.com | .example.com");
    host->add_option("PATTERN", "")->required();
    host->add_option("--category", "")->required();
    auto* url = add->add_subcommand("url", "a URL pattern: RE2, matched against the whole URL");
    url->add_option("PATTERN", "")->required();
    url->add_option("--category", "")->required();
    url->add_option("--description", "");
    auto* sig = add->add_subcommand("signature", "an RE2 signature for a URL, a header or a body");
    sig->add_option("NAME", "")->required();
    sig->add_option("--target", "")->required()->check(
        CLI::IsMember({"url", "request_header", "response_header", "request_body", "response_body"}));
    sig->add_option("--pattern", "RE2")->required();
    sig->add_option("--action", "(default block)")->check(CLI::IsMember({"block", "warn", "monitor"}));
    sig->add_option("--severity", "(default medium)")->check(CLI::IsMember({"low", "medium", "high", "critical"}));
    sig->add_option("--validator", "a check on what matched")->check(CLI::IsMember({"luhn", "ssn"}));
    sig->add_option("--description", "");
    auto* policy = add->add_subcommand("policy", "who gets which action; lower priority is evaluated first");
    policy->add_option("NAME", "")->required();
    policy->add_option("--action", "")->required()->check(
        CLI::IsMember({"allow", "block", "warn", "monitor", "bypass_inspection"}));
    policy->add_option("--priority", "(default 100)")->check(CLI::Number);
    policy->add_option("--user", "");
    policy->add_option("--group", "");
    policy->add_option("--client", "")->type_name("CIDR");
    policy->add_option("--category", "");
    flag(*policy, "--all", "apply to everyone: needed when no condition is given");

    for (const char* verb : {"remove", "enable", "disable"}) {
        auto* c = app.add_subcommand(verb, std::string(verb) + " a rule");
        c->add_option("KIND", "category, host, url, signature, policy")->required();
        c->add_option("KEY", "its name or pattern")->required();
        if (std::string(verb) == "enable") cost_options(c);
    }
    auto* list = app.add_subcommand("list", "the rules");
    list->add_option("--kind", "only this kind");
    flag(*list, "--json", "the native JSON of what is listed");

    auto* test = app.add_subcommand("test", "the verdict for a request, with the gateway's own matching code");
    test->add_option("--url", "")->required();
    test->add_option("--method", "");
    test->add_option("--request-header", "'Name: value' (repeatable)")->take_all()->allow_extra_args(false);
    test->add_option("--request-body", "")->type_name("FILE");
    test->add_option("--response-header", "'Name: value' (repeatable)")->take_all()->allow_extra_args(false);
    test->add_option("--response-body", "")->type_name("FILE");
    test->add_option("--user", "");
    test->add_option("--group", "(repeatable; default: the user's groups in the database)")->take_all()->allow_extra_args(false);
    test->add_option("--client", "the client address (default 127.0.0.1)")->type_name("IP");
    flag(*test, "--cost", "also what each target's signatures cost on the built-in sample");
    flag(*test, "--json", "");

    auto* user = app.add_subcommand("user", "proxy users (passwords: PBKDF2-HMAC-SHA256)")->require_subcommand(1);
    auto* uadd = user->add_subcommand("add", "");
    uadd->add_option("NAME", "")->required();
    uadd->add_option("--password-file", "'-' reads standard input")->required()->type_name("FILE");
    uadd->add_option("--group", "(repeatable)")->take_all()->allow_extra_args(false);
    auto* passwd = user->add_subcommand("passwd", "");
    passwd->add_option("NAME", "")->required();
    passwd->add_option("--password-file", "'-' reads standard input")->required()->type_name("FILE");
    auto* ugroups = user->add_subcommand("groups", "replace the user's groups");
    ugroups->add_option("NAME", "")->required();
    ugroups->add_option("--group", "(repeatable)")->take_all()->allow_extra_args(false);
    user->add_subcommand("remove", "")->add_option("NAME", "")->required();
    flag(*user->add_subcommand("list", ""), "--json", "");
    auto* group = app.add_subcommand("group", "groups")->require_subcommand(1);
    group->add_subcommand("add", "")->add_option("NAME", "")->required();
    group->add_subcommand("remove", "")->add_option("NAME", "")->required();
    flag(*group->add_subcommand("list", ""), "--json", "");

    auto* history = app.add_subcommand("history", "what each write did: who, when, which rules");
    history->add_option("--limit", "(default 20)")->check(CLI::PositiveNumber);
    flag(*history, "--json", "the full rows");
    auto* diff = app.add_subcommand("diff", "the rules added, removed and changed between two versions");
    diff->add_option("FROM", "a version")->required();
    diff->add_option("TO", "a version (default: the current one)");
    flag(*diff, "--json", "");
    auto* rollback = app.add_subcommand("rollback", "a new version with the rules of VERSION (users stay); the newest 50 are kept");
    rollback->add_option("VERSION", "")->required();
    cost_options(rollback);
    flag(*app.add_subcommand("stats", "the ruleset version and how many rules of each kind"), "--json", "");
}

}  // namespace vigil::rules::cli
