// The tools' shared grammar: what a parse yields, and the names offered for typos.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "core/cli.hpp"

namespace cli = vigil::core::cli;

namespace {

int parse(CLI::App& app, std::vector<std::string> words) {
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    return cli::parse(app, static_cast<int>(argv.size()), argv.data());
}

void declare(CLI::App& app) {
    app.add_option("--db", "")->required();
    app.require_subcommand(1);
    auto* add = app.add_subcommand("add", "")->require_subcommand(1);
    auto* policy = add->add_subcommand("policy", "");
    policy->add_option("NAME", "")->required();
    policy->add_option("--group", "")->take_all();
    policy->add_option("--category", "");
    cli::flag(*policy, "--all", "");
}

[[noreturn]] void parse_and_exit(std::vector<std::string> words) {
    CLI::App app("", "tool");
    declare(app);
    parse(app, std::move(words));
    std::exit(0);
}

}  // namespace

TEST(Cli, CollectGivesCommandWordsPositionalsAndOptionsInOrder) {
    CLI::App app{"", "tool"};
    declare(app);
    ASSERT_EQ(parse(app, {"tool", "add", "policy", "p1", "--group", "a", "--all", "--group", "b", "--db", "x.db"}), -1);
    const cli::Args a = cli::collect(app);
    EXPECT_EQ(a.positional, (std::vector<std::string>{"add", "policy", "p1"}));
    EXPECT_EQ(a.get("--db"), "x.db");  // the tool's own option, given after the command
    EXPECT_EQ(a.all("--group"), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(a.has("--all"));
    EXPECT_FALSE(a.has("--category"));
    EXPECT_EQ(a.command, "tool add policy");
}

TEST(Cli, UsageErrorsExitTwoNamingTheWordAndTheClosestName) {
    auto expect_exit = [](std::vector<std::string> words, const std::string& message) {
        EXPECT_EXIT(parse_and_exit(words), ::testing::ExitedWithCode(2), message);
    };
    expect_exit({"tool", "--db", "x", "add", "policy", "p", "--categroy", "c"},
                "unknown option --categroy for add policy; did you mean --category\\?");
    expect_exit({"tool", "--db", "x", "add", "polciy", "p"}, "unknown command polciy for add; did you mean policy\\?");
    expect_exit({"tool", "--db", "x", "add", "policy", "p", "--category", "a", "--category", "b"},
                "--category is given more than once");
    expect_exit({"tool", "--db", "x", "add", "policy", "p", "q"}, "unexpected argument q for add policy");
    expect_exit({"tool", "add", "policy", "p"}, "--db is required");
    expect_exit({"tool", "--db", "x"}, "a command is needed: add");
}

TEST(Cli, ClosestOffersOnlyLikelyTypos) {
    const std::vector<std::string> names = {"--category", "--client", "--limit", "list", "init"};
    EXPECT_EQ(cli::closest("--categroy", names), "--category");
    EXPECT_EQ(cli::closest("lsit", names), "list");  // two letters swapped: one edit
    EXPECT_EQ(cli::closest("--limt", names), "--limit");
    EXPECT_EQ(cli::closest("--conn", names), "");
    EXPECT_EQ(cli::closest("--frobnicate", names), "");
}
