// Luhn and SSN validators.
#include "inspect/validators.hpp"

#include <string>

namespace vigil::inspect {

bool luhn_valid(std::string_view s) {
    std::string digits;
    for (char c : s) {
        if (c >= '0' && c <= '9') digits += c;
        else if (c != ' ' && c != '-') return false;
    }
    if (digits.size() < 13 || digits.size() > 19) return false;
    int sum = 0;
    bool dbl = false;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        int d = *it - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

bool ssn_valid(std::string_view s) {
    std::string d;
    for (char c : s)
        if (c >= '0' && c <= '9') d += c;
    if (d.size() != 9) return false;
    std::string area = d.substr(0, 3), group = d.substr(3, 2), serial = d.substr(5);
    if (area == "000" || area == "666" || area[0] == '9') return false;
    return group != "00" && serial != "0000";
}

bool run_validator(std::string_view name, std::string_view candidate) {
    if (name == "luhn") return luhn_valid(candidate);
    if (name == "ssn") return ssn_valid(candidate);
    return true;
}

}  // namespace vigil::inspect
