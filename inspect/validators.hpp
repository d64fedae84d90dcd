// Validators that turn a pattern hit into a real finding (fewer false positives for DLP).
#pragma once

#include <string_view>

namespace vigil::inspect {

// Payment card numbers: 13-19 digits (spaces and dashes ignored) passing the Luhn checksum.
bool luhn_valid(std::string_view candidate);
// US SSNs: AAA-GG-SSSS with area not 000, 666 or 9xx, group not 00, serial not 0000.
bool ssn_valid(std::string_view candidate);

bool run_validator(std::string_view name, std::string_view candidate);

}  // namespace vigil::inspect
