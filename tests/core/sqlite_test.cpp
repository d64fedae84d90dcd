// The SQLite helper: typed binds and reads, errors through the caller's own function, and a
// transaction that leaves nothing behind when it throws.
#include "core/sqlite.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace vigil::core::sql {
namespace {

struct TestError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
[[noreturn]] void test_fail(const std::string& m) { throw TestError("test db: " + m); }

struct Db : ::testing::Test {
    sqlite3* db = nullptr;
    void SetUp() override {
        ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
        exec(db, "CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER)", test_fail);
    }
    void TearDown() override { sqlite3_close(db); }
    int64_t rows() {
        Statement q(db, "SELECT count(*) FROM t", test_fail);
        EXPECT_TRUE(q.step());
        return q.integer(0);
    }
};

TEST_F(Db, BindRunAndRead) {
    Statement ins(db, "INSERT INTO t VALUES (?, ?)", test_fail);
    ins.bind(1, std::string_view("a")).bind(2, int64_t(7)).run();
    ins.bind(1, std::string("b")).bind(2, int64_t(-1)).run();  // reusable after run()
    Statement q(db, "SELECT k, v FROM t WHERE v > ? ORDER BY k", test_fail);
    q.bind(1, int64_t(0));
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), "a");
    EXPECT_EQ(q.integer(1), 7);
    EXPECT_FALSE(q.step());
}

TEST_F(Db, ErrorsGoThroughTheCallersFunction) {
    EXPECT_THROW(Statement(db, "SELECT nope FROM t", test_fail), TestError);
    Statement ins(db, "INSERT INTO t VALUES (?, ?)", test_fail);
    ins.bind(1, std::string_view("dup")).run();
    ins.bind(1, std::string_view("dup"));
    try {
        ins.step();
        FAIL() << "a duplicate key was accepted";
    } catch (const TestError& e) {
        EXPECT_NE(std::string(e.what()).find("UNIQUE"), std::string::npos) << e.what();
    }
}

TEST_F(Db, TransactionRollsBackOnAnyException) {
    EXPECT_THROW(transaction(db, "BEGIN IMMEDIATE", test_fail,
                             [&] {
                                 Statement(db, "INSERT INTO t VALUES ('x', 1)", test_fail).run();
                                 throw std::logic_error("half-way");
                             }),
                 std::logic_error);
    EXPECT_EQ(rows(), 0);
    transaction(db, "BEGIN", test_fail, [&] { Statement(db, "INSERT INTO t VALUES ('y', 2)", test_fail).run(); });
    EXPECT_EQ(rows(), 1);
}

}  // namespace
}  // namespace vigil::core::sql
