// The console's own state (console.db in the state folder): administrators with PBKDF2
// password hashes and a role, and the console's events — sign-ins, failures, refusals, rule
// changes — which `vigil-console events` lists.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace vigil::console {

class ConsoleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class Role { viewer = 0, analyst = 1, admin = 2 };
const char* role_name(Role r);
std::optional<Role> parse_role(const std::string& name);

struct ConsoleUser {
    std::string name;
    Role role = Role::viewer;
};

struct ConsoleEvent {
    std::string time, user, client, event, detail;
};

class ConsoleDb {
public:
    static std::unique_ptr<ConsoleDb> open(const std::string& path);  // created 0600 when absent
    ~ConsoleDb();

    // Throws ConsoleError: a name of other characters than letters, digits and ._@-, a password
    // shorter than 10 characters, an existing user.
    void add_user(const std::string& name, const std::string& password, Role role);
    bool remove_user(const std::string& name);
    std::vector<ConsoleUser> users() const;
    // The user's role when the password is right. Slow on purpose (PBKDF2), and as slow for an
    // unknown name.
    std::optional<Role> check(const std::string& name, const std::string& password) const;

    void event(const std::string& user, const std::string& client, const std::string& what, const std::string& detail);
    std::vector<ConsoleEvent> events(int limit) const;

private:
    explicit ConsoleDb(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

}  // namespace vigil::console
