#include "core/cli.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

namespace vigil::core::cli {
namespace {

std::vector<std::string> subcommand_names(CLI::App& app);

// Edits (insert, delete, replace, swap two neighbours) from x to y: "lsit" is one from "list".
size_t edit_distance(const std::string& x, const std::string& y) {
    std::vector<std::vector<size_t>> d(x.size() + 1, std::vector<size_t>(y.size() + 1));
    for (size_t i = 0; i <= x.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= y.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= x.size(); ++i)
        for (size_t j = 1; j <= y.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[x.size()][y.size()];
}

const CLI::App& root_of(const CLI::App& app) {
    const CLI::App* a = &app;
    while (a->get_parent()) a = a->get_parent();
    return *a;
}

// Every subcommand below `app` falls through to its parent for options it does not know (so
// `--db` may follow the command), and whatever nobody takes lands in the root's leftovers,
// which parse() then names itself.
void configure(CLI::App& app) {
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        sub->fallthrough(true);
        configure(*sub);
    }
}

// The options a command takes: its own and those of the commands around it.
std::vector<std::string> option_names(const CLI::App& app) {
    std::vector<std::string> out;
    for (const CLI::App* a = &app; a; a = a->get_parent())
        for (const CLI::Option* o : a->get_options()) {
            for (const auto& n : o->get_lnames()) out.push_back("--" + n);
            for (const auto& n : o->get_snames()) out.push_back("-" + n);
        }
    return out;
}

std::vector<std::string> subcommand_names(CLI::App& app) {
    std::vector<std::string> out;
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) out.push_back(sub->get_name());
    return out;
}

// CLI11's messages, in the words of the rest of Vigil where they are awkward.
std::string plain(CLI::App& app, const CLI::ParseError& e) {
    const std::string what = e.what();
    const std::string name = what.substr(0, what.find(':'));
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e)) {
        if (what.find("At Most") != std::string::npos) return name + " is given more than once";
        if (what.find("missing") != std::string::npos) return name + " needs a value";
    }
    if (const auto set = what.find(" not in {"); dynamic_cast<const CLI::ValidationError*>(&e) && set != std::string::npos) {
        const auto colon = what.find(": ");
        std::string choices = what.substr(set + 9, what.rfind('}') - set - 9);
        for (size_t p = 0; (p = choices.find(',', p)) != std::string::npos; p += 2) choices.replace(p, 1, ", ");
        return name + " must be one of " + choices + " (not " + what.substr(colon + 2, set - colon - 2) + ")";
    }
    if (dynamic_cast<const CLI::RequiredError*>(&e) && what.find("subcommand") != std::string::npos) {
        const CLI::App& inner = innermost(app);
        std::string names;
        for (const auto& n : subcommand_names(const_cast<CLI::App&>(inner))) names += (names.empty() ? "" : ", ") + n;
        return "a command is needed: " + names;
    }
    return what;
}

}  // namespace

const CLI::App& innermost(const CLI::App& app) {
    const CLI::App* a = &app;
    for (;;) {
        auto used = a->get_subcommands();
        if (used.empty()) return *a;
        a = used.front();
    }
}

std::string command_path(const CLI::App& app) {
    std::string path;
    for (const CLI::App* a = &app; a; a = a->get_parent()) path = a->get_name() + (path.empty() ? "" : " " + path);
    return path;
}

CLI::Option* flag(CLI::App& app, const std::string& name, const std::string& description) {
    return app.add_flag(name, description);
}

CLI::Option* option(CLI::App& app, const std::string& name, const std::string& description) {
    return app.add_option(name, CLI::callback_t{}, description);
}

Args collect(const CLI::App& app) {
    Args out;
    const CLI::App* a = &app;
    for (;;) {
        if (a != &app) out.positional.push_back(a->get_name());
        for (const CLI::Option* o : a->get_options()) {
            if (o->count() == 0) continue;
            if (o->get_positional()) {
                for (const auto& v : o->results()) out.positional.push_back(v);
                continue;
            }
            const std::string name = o->get_lnames().empty() ? "-" + o->get_snames().front() : "--" + o->get_lnames().front();
            if (o->get_type_size_max() == 0) out.opts.emplace(name, "1");
            else
                for (const auto& v : o->reduced_results()) out.opts.emplace(name, v);  // after the option's policy (take_last)
        }
        auto used = a->get_subcommands();
        if (used.empty()) break;
        a = used.front();
    }
    out.command = command_path(*a);
    return out;
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_d = std::max<size_t>(2, word.size() / 4) + 1;
    for (const auto& c : candidates) {
        const size_t d = edit_distance(word, c);
        if (d < best_d) best = c, best_d = d;
    }
    return best;
}

void usage_error(const CLI::App& app, const std::string& message) {
    const CLI::App& inner = innermost(app);
    std::cerr << root_of(app).get_name() << ": " << message << " (see " << command_path(inner) << " --help)\n";
    std::exit(2);
}

int parse(CLI::App& app, int argc, char** argv) {
    configure(app);
    app.allow_extras(true);
    app.set_version_flag("--version", app.get_name() + " " + kVersion);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help or --version, printed
    } catch (const CLI::ParseError& e) {
        // A missing command or value is often the consequence of a mistyped word: name that.
        if (app.remaining(true).empty()) usage_error(app, plain(app, e));
    }
    const CLI::App& inner = innermost(app);
    const auto rest = app.remaining(true);
    if (rest.empty()) return -1;
    const std::string& first = rest.front();
    const std::string where = inner.get_parent() ? " for " + command_path(inner).substr(app.get_name().size() + 1) : "";
    if (first.size() > 1 && first[0] == '-') {
        const std::string name = first.substr(0, first.find('='));
        const std::string near = closest(name, option_names(inner));
        usage_error(app, "unknown option " + name + where + (near.empty() ? "" : "; did you mean " + near + "?"));
    }
    // A word where a command was expected is a mistyped command; anywhere else, one too many.
    auto names = subcommand_names(const_cast<CLI::App&>(inner));
    if (!names.empty() && inner.get_subcommands().empty()) {
        const std::string near = closest(first, names);
        usage_error(app, "unknown command " + first + where + (near.empty() ? "" : "; did you mean " + near + "?"));
    }
    usage_error(app, "unexpected argument " + first + where);
}

}  // namespace vigil::core::cli
