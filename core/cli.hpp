// The command-line grammar the four tools share (vigil, vigil-ca, vigil-rules, vigil-audit), on
// CLI11: an unknown option, a stray argument, a missing or malformed value exits 2 with one line
// naming it ("did you mean --category?" when one is close) and nothing done; `--help` on every
// command and subcommand; `--version`. Only the tools' main files include CLI11 itself.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}

namespace vigil::core::cli {

constexpr const char* kVersion = "0.1.0";

// Parses argv into `app` (its options and subcommands declared). Returns -1 when the tool should
// go on; otherwise the exit code to return at once: 0 after --help or --version (printed), 2 after
// a usage error (printed on stderr as "TOOL: what is wrong (see TOOL COMMAND --help)").
int parse(CLI::App& app, int argc, char** argv);

// A usage error found after parsing (two options that exclude each other, a value out of range):
// the same one line and exit 2, naming the innermost command used.
[[noreturn]] void usage_error(const CLI::App& app, const std::string& message);

// The innermost subcommand used ("add policy"), or the tool itself when none was.
const CLI::App& innermost(const CLI::App& app);
std::string command_path(const CLI::App& app);

// A flag (an option without a value); CLI11's own add_flag is ambiguous for a literal description.
CLI::Option* flag(CLI::App& app, const std::string& name, const std::string& description);
// An option with one value, read through collect(); for a description built at run time.
CLI::Option* option(CLI::App& app, const std::string& name, const std::string& description);

// What was parsed, for the commands to read: the command words then the positional arguments in
// order, and every option given ("--name" -> value; a flag -> "1"), repeated ones in order.
struct Args {
    std::vector<std::string> positional;
    std::multimap<std::string, std::string> opts;
    std::string command;  // "vigil-rules add policy": for messages

    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second;
    }
    std::vector<std::string> all(const std::string& k) const {
        std::vector<std::string> out;
        for (auto [a, b] = opts.equal_range(k); a != b; ++a) out.push_back(a->second);
        return out;
    }
    bool has(const std::string& k) const { return opts.count(k) > 0; }
};
Args collect(const CLI::App& app);

// The candidate closest to `word` by edit distance, when close enough to be a likely typo.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace vigil::core::cli
