use std::fs;

use serde_json::json;

use super::*;

/// The credential schemas of the workspace (`schemas/`) and their examples.
const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");

const TYPES: &[&str] = &[
    "BusinessLicense",
    "DataAccessAuthorization",
    "EducationCredential",
    "OfficialRole",
    "ResidentIdentity",
];

/// A minimal schema and its SRI, computed independently with Python's hashlib + base64.
const MINIMAL: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","vct":"urn:example:vct:member","x-display":[{"locale":"en-US","name":"Member"}],"type":"object","additionalProperties":false,"properties":{"name":{"type":"string","x-classification":"public"}}}"#;
const MINIMAL_SRI: &str = "sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs=";

fn schema_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(SCHEMA_DIR).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.ends_with(".schema.json") {
            files.push((name, fs::read(entry.path()).unwrap()));
        }
    }
    files
}

fn set() -> SchemaSet {
    SchemaSet::from_files(schema_files()).unwrap()
}

fn schema(type_name: &str) -> CredentialSchema {
    set().by_type(type_name).unwrap().clone()
}

fn example(type_name: &str) -> Map<String, Value> {
    let path = format!("{SCHEMA_DIR}/examples/{type_name}.json");
    match serde_json::from_slice(&fs::read(path).unwrap()).unwrap() {
        Value::Object(map) => map,
        other => panic!("example {type_name} is not an object: {other}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn path(text: &str) -> ClaimPath {
    text.parse().unwrap()
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A schema document with `properties` and optional `x-derived`.
fn doc(properties: Value, derived: Option<Value>) -> Vec<u8> {
    let mut d = json!({
        "$schema": SCHEMA_DIALECT,
        "vct": "urn:example:vct:test",
        "x-display": [{"locale": "en-US", "name": "Test"}],
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if let Some(derived) = derived {
        d["x-derived"] = derived;
    }
    serde_json::to_vec(&d).unwrap()
}

fn parse_err(properties: Value, derived: Option<Value>) -> SchemaError {
    CredentialSchema::parse(&doc(properties, derived)).unwrap_err()
}

// --- the workspace schemas -------------------------------------------------------------

#[test]
fn every_schema_parses_with_its_vct_title_and_labels() {
    let set = set();
    let names: Vec<&str> = set.iter().map(|(t, _)| t).collect();
    assert_eq!(names, TYPES);
    for (type_name, schema) in set.iter() {
        assert_eq!(
            schema.vct(),
            format!("https://schemas.civitas.gov.example/vct/{type_name}/v1")
        );
        assert_eq!(schema.title(), Some(type_name));
        assert_eq!(
            set.by_vct(schema.vct()).map(CredentialSchema::vct),
            Some(schema.vct())
        );
        let locales: Vec<&str> = schema.display().iter().map(|l| l.locale.as_str()).collect();
        assert_eq!(locales, ["zh-CN", "en-US"], "{type_name}");
        for claim in schema.claims() {
            let locales: Vec<&str> = claim.display.iter().map(|l| l.locale.as_str()).collect();
            assert_eq!(locales, ["zh-CN", "en-US"], "{type_name} {}", claim.path);
        }
    }
}

#[test]
fn every_example_plans_without_core_claims_and_passes_its_checks() {
    for type_name in TYPES {
        let schema = schema(type_name);
        let claims = example(type_name);
        assert_eq!(validate_claim_checks(&schema, &claims), [], "{type_name}");
        let plan = schema.plan(&claims, date(2026, 5, 1)).unwrap();
        let level = schema.disclosed_level(&plan.to_claims()).unwrap();
        assert_eq!(level, plan.level(), "{type_name}");
        assert!(
            level.is_some_and(|l| l < Classification::Core),
            "{type_name}"
        );
        for (name, claim) in plan.claims() {
            assert_eq!(
                claim.disclosable,
                claim.classification != Classification::Public
            );
            assert!(
                claim.classification < Classification::Core,
                "{type_name} {name}"
            );
        }
    }
}

#[test]
fn resident_identity_classifications() {
    let s = schema("ResidentIdentity");
    let expected = [
        ("name", Classification::Sensitive),
        ("identity_number", Classification::Core),
        ("birth_date", Classification::Core),
        ("address", Classification::Core),
        ("address.region_code", Classification::Core),
        ("address.street", Classification::Core),
        ("nationality", Classification::Internal),
        ("photo_hash", Classification::Sensitive),
        ("identity_number_masked", Classification::Sensitive),
        ("age_over_18", Classification::Internal),
        ("age_over_60", Classification::Internal),
        ("region", Classification::Internal),
        ("province_code", Classification::Internal),
    ];
    for (p, c) in expected {
        assert_eq!(s.classification_of(&path(p)), Some(c), "{p}");
    }
    for missing in [
        "address.country",
        "nationality.code",
        "name[]",
        "iss",
        "vct",
    ] {
        assert_eq!(s.classification_of(&path(missing)), None, "{missing}");
    }
    let derived: Vec<String> = s
        .claims()
        .iter()
        .filter(|c| c.derived)
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(
        derived,
        [
            "identity_number_masked",
            "age_over_18",
            "age_over_60",
            "region",
            "province_code"
        ]
    );
    assert_eq!(s.credential_level(), Classification::Sensitive);
}

#[test]
fn official_role_stays_within_internal_for_policy_claims() {
    let s = schema("OfficialRole");
    for p in [
        "department",
        "role",
        "clearance",
        "jurisdiction",
        "valid_from",
        "valid_until",
    ] {
        let c = s.classification_of(&path(p)).unwrap();
        assert!(c <= Classification::Internal, "{p} is {c:?}");
    }
    assert_eq!(
        s.classification_of(&path("role")),
        Some(Classification::Internal)
    );
    assert_eq!(
        s.classification_of(&path("department")),
        Some(Classification::Public)
    );
    let disclosed = obj(json!({
        "iss": "did:civ:aaaa", "iat": 1, "vct": s.vct(), "vct#integrity": s.integrity(),
        "cnf": {"jwk": {}}, "sub": "did:civ:bbbb", "status": {},
        "department": "did:civ:zdsy4guu75cyfxn3ucqiaeuom3arbkrq",
        "role": "supervisor", "clearance": 3, "jurisdiction": "310000"
    }));
    assert_eq!(
        s.disclosed_level(&disclosed),
        Ok(Some(Classification::Internal))
    );
    let mut with_name = disclosed;
    with_name.insert("name".into(), json!("陈明"));
    assert_eq!(
        s.disclosed_level(&with_name),
        Ok(Some(Classification::Sensitive))
    );
    assert_eq!(s.disclosed_level(&Map::new()), Ok(None));
}

#[test]
fn nested_and_array_classifications() {
    let s = schema("EducationCredential");
    let expected = [
        ("programme", Classification::Public),
        ("programme.institution", Classification::Public),
        ("programme.study_mode", Classification::Internal),
        ("honours", Classification::Internal),
        ("honours[]", Classification::Internal),
        ("honours[1]", Classification::Internal),
        ("courses[]", Classification::Internal),
        ("courses[].grade", Classification::Sensitive),
        ("courses[7].grade", Classification::Sensitive),
        ("courses[].title", Classification::Internal),
    ];
    for (p, c) in expected {
        assert_eq!(s.classification_of(&path(p)), Some(c), "{p}");
    }
    assert_eq!(s.classification_of(&path("courses.grade")), None);
    assert_eq!(s.classification_of(&path("programme[]")), None);
    let paths: Vec<Value> = s
        .claims()
        .iter()
        .filter(|c| c.path.segments().first() == Some(&PathSegment::Name("courses".into())))
        .map(|c| serde_json::to_value(&c.path).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            json!(["courses"]),
            json!(["courses", null]),
            json!(["courses", null, "title"]),
            json!(["courses", null, "credits"]),
            json!(["courses", null, "grade"]),
        ]
    );
}

// --- the disclosure plan ---------------------------------------------------------------

#[test]
fn resident_identity_plan_removes_core_and_adds_derived_claims() {
    let s = schema("ResidentIdentity");
    let plan = s
        .plan(&example("ResidentIdentity"), date(2026, 5, 1))
        .unwrap();
    let expected = json!({
        "name": "李华",
        "nationality": "CN",
        "photo_hash": "sha256-T+q7pJdtk5xWZ0GRTzhJSN3T8ynz7dosCYfFTDQ/zeg=",
        "identity_number_masked": "310***********1239",
        "age_over_18": true,
        "age_over_60": false,
        "region": "310115",
        "province_code": "310000",
    });
    assert_eq!(Value::Object(plan.to_claims()), expected);
    let names: Vec<&str> = plan.claims().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "name",
            "nationality",
            "photo_hash",
            "identity_number_masked",
            "age_over_18",
            "age_over_60",
            "region",
            "province_code"
        ]
    );
    for (name, claim) in plan.claims() {
        assert!(claim.disclosable, "{name} must be its own disclosure");
        assert!(matches!(claim.value, PlannedValue::Leaf(_)));
    }
    assert_eq!(plan.level(), Some(Classification::Sensitive));
}

#[test]
fn business_license_public_claims_are_plain() {
    let s = schema("BusinessLicense");
    let plan = s
        .plan(&example("BusinessLicense"), date(2026, 5, 1))
        .unwrap();
    for (name, claim) in plan.claims() {
        let expected_disclosable = name == "legal_representative";
        assert_eq!(claim.disclosable, expected_disclosable, "{name}");
    }
    let (_, capital) = plan
        .claims()
        .iter()
        .find(|(n, _)| n == "registered_capital")
        .unwrap();
    let PlannedValue::Object(members) = &capital.value else {
        panic!("registered_capital is an object");
    };
    assert!(members.iter().all(|(_, m)| !m.disclosable));
    assert_eq!(
        Value::Object(plan.to_claims()),
        Value::Object(example("BusinessLicense"))
    );
}

#[test]
fn education_plan_conceals_members_and_elements_individually() {
    let s = schema("EducationCredential");
    let claims = example("EducationCredential");
    let plan = s.plan(&claims, date(2026, 5, 1)).unwrap();
    assert_eq!(Value::Object(plan.to_claims()), Value::Object(claims));
    let get = |name: &str| {
        plan.claims()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    let programme = get("programme");
    assert!(!programme.disclosable);
    let PlannedValue::Object(members) = programme.value else {
        panic!("programme is an object");
    };
    let flags: Vec<(&str, bool)> = members
        .iter()
        .map(|(n, m)| (n.as_str(), m.disclosable))
        .collect();
    assert_eq!(
        flags,
        [
            ("institution", false),
            ("institution_code", false),
            ("level", false),
            ("major", false),
            ("study_mode", true),
            ("enrolled_on", true),
            ("graduated_on", false),
        ]
    );
    let honours = get("honours");
    assert!(honours.disclosable);
    let PlannedValue::Array(elements) = honours.value else {
        panic!("honours is an array");
    };
    assert_eq!(elements.len(), 2);
    assert!(
        elements
            .iter()
            .all(|e| e.disclosable && matches!(e.value, PlannedValue::Leaf(_)))
    );
    let PlannedValue::Array(courses) = get("courses").value else {
        panic!("courses is an array");
    };
    assert_eq!(courses.len(), 3);
    for course in &courses {
        assert_eq!(course.classification, Classification::Internal);
        let PlannedValue::Object(members) = &course.value else {
            panic!("a course is an object");
        };
        let grade = &members.iter().find(|(n, _)| n == "grade").unwrap().1;
        assert_eq!(grade.classification, Classification::Sensitive);
        assert!(grade.disclosable);
    }
    assert_eq!(plan.level(), Some(Classification::Sensitive));
}

#[test]
fn plan_refuses_claims_outside_the_schema() {
    let s = schema("EducationCredential");
    let mut claims = example("EducationCredential");
    claims.insert("iss".into(), json!("did:civ:x"));
    assert_eq!(
        s.plan(&claims, date(2026, 5, 1)),
        Err(ClaimsError::Unknown("iss".into()))
    );
    let mut claims = example("EducationCredential");
    claims["courses"][1]
        .as_object_mut()
        .unwrap()
        .insert("teacher".into(), json!("x"));
    assert_eq!(
        s.plan(&claims, date(2026, 5, 1)),
        Err(ClaimsError::Unknown("courses[1].teacher".into()))
    );
    let mut claims = example("EducationCredential");
    claims["programme"] = json!("复旦大学");
    assert_eq!(
        s.plan(&claims, date(2026, 5, 1)),
        Err(ClaimsError::Shape {
            path: "programme".into(),
            expected: "an object"
        })
    );
}

#[test]
fn plan_omits_derived_claims_of_absent_sources_and_refuses_bad_sources() {
    let s = schema("ResidentIdentity");
    let mut claims = example("ResidentIdentity");
    claims.remove("address");
    let plan = s.plan(&claims, date(2026, 5, 1)).unwrap();
    assert!(
        plan.claims()
            .iter()
            .all(|(n, _)| n != "region" && n != "province_code")
    );

    let mut claims = example("ResidentIdentity");
    claims.insert("birth_date".into(), json!("2027-01-01"));
    let err = s.plan(&claims, date(2026, 5, 1)).unwrap_err();
    assert_eq!(
        err,
        ClaimsError::Derive {
            name: "age_over_18".into(),
            reason: "expected a birth date on or before the issuance date"
        }
    );
    claims.insert("birth_date".into(), json!("1990-3-7"));
    assert!(matches!(
        s.plan(&claims, date(2026, 5, 1)),
        Err(ClaimsError::Derive { .. })
    ));
    // Messages never carry the value.
    assert!(!err.to_string().contains("2027"));
}

#[test]
fn disclosed_level_refuses_core_and_unknown_claims() {
    let s = schema("ResidentIdentity");
    let core = obj(json!({"identity_number": "310115199003071239"}));
    assert_eq!(
        s.disclosed_level(&core),
        Err(ClaimsError::Core("identity_number".into()))
    );
    let unknown = obj(json!({"shoe_size": 42}));
    assert_eq!(
        s.disclosed_level(&unknown),
        Err(ClaimsError::Unknown("shoe_size".into()))
    );
    let e = schema("EducationCredential");
    let public = obj(json!({"programme": {"institution": "复旦大学"}}));
    assert_eq!(e.disclosed_level(&public), Ok(Some(Classification::Public)));
    let grade = obj(json!({"courses": [{"grade": 92}]}));
    assert_eq!(
        e.disclosed_level(&grade),
        Ok(Some(Classification::Sensitive))
    );
    let bad = obj(json!({"courses": [{"grades": 92}]}));
    assert_eq!(
        e.disclosed_level(&bad),
        Err(ClaimsError::Unknown("courses[0].grades".into()))
    );
}

// --- derivation rules -----------------------------------------------------------------

#[test]
fn age_counts_whole_years_up_to_the_birthday() {
    // The day before and the day of the 18th birthday.
    assert_eq!(age_on(date(2008, 5, 1), date(2026, 4, 30)), Some(17));
    assert_eq!(age_on(date(2008, 5, 1), date(2026, 5, 1)), Some(18));
    // Across a year end.
    assert_eq!(age_on(date(2007, 12, 31), date(2025, 12, 30)), Some(17));
    assert_eq!(age_on(date(2007, 12, 31), date(2025, 12, 31)), Some(18));
    assert_eq!(age_on(date(2007, 12, 31), date(2026, 1, 1)), Some(18));
    // Born on 29 February: in a common year the age is reached on 1 March.
    assert_eq!(age_on(date(2008, 2, 29), date(2026, 2, 28)), Some(17));
    assert_eq!(age_on(date(2008, 2, 29), date(2026, 3, 1)), Some(18));
    // ... and on 29 February itself in a leap year.
    assert_eq!(age_on(date(2004, 2, 29), date(2024, 2, 28)), Some(19));
    assert_eq!(age_on(date(2004, 2, 29), date(2024, 2, 29)), Some(20));
    // Born the day of issuance; born after it.
    assert_eq!(age_on(date(2026, 5, 1), date(2026, 5, 1)), Some(0));
    assert_eq!(age_on(date(2026, 5, 2), date(2026, 5, 1)), None);
}

#[test]
fn age_over_claims_at_the_boundaries() {
    let s = schema("ResidentIdentity");
    let age = |birth: &str, on: NaiveDate| {
        let mut claims = example("ResidentIdentity");
        claims.insert("birth_date".into(), json!(birth));
        let plan = s.plan(&claims, on).unwrap().to_claims();
        (plan["age_over_18"].clone(), plan["age_over_60"].clone())
    };
    assert_eq!(
        age("2008-05-01", date(2026, 4, 30)),
        (json!(false), json!(false))
    );
    assert_eq!(
        age("2008-05-01", date(2026, 5, 1)),
        (json!(true), json!(false))
    );
    assert_eq!(
        age("2008-02-29", date(2026, 2, 28)),
        (json!(false), json!(false))
    );
    assert_eq!(
        age("2008-02-29", date(2026, 3, 1)),
        (json!(true), json!(false))
    );
    assert_eq!(
        age("1966-05-01", date(2026, 4, 30)),
        (json!(true), json!(false))
    );
    assert_eq!(
        age("1966-05-01", date(2026, 5, 1)),
        (json!(true), json!(true))
    );
}

#[test]
fn civil_dates_are_china_standard_time() {
    // 2026-04-30T15:59:59Z is 23:59:59 on 30 April in Shanghai; a second later it is 1 May.
    assert_eq!(civil_date(1_777_564_799), Some(date(2026, 4, 30)));
    assert_eq!(civil_date(1_777_564_800), Some(date(2026, 5, 1)));
    assert_eq!(civil_date(0), Some(date(1970, 1, 1)));
    assert_eq!(civil_date(i64::MAX), None);
}

#[test]
fn dates_parse_strictly() {
    assert_eq!(parse_date("1990-03-07"), Some(date(1990, 3, 7)));
    assert_eq!(parse_date("2000-02-29"), Some(date(2000, 2, 29)));
    for bad in [
        "1990-3-07",
        "1990-02-30",
        "1900-02-29",
        "+990-03-07",
        "19900307",
        "1990-03-07 ",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn masking_keeps_the_ends_and_the_length() {
    assert_eq!(mask("310115199003071239", 3, 4), "310***********1239");
    assert_eq!(mask("11010519491231002X", 3, 4), "110***********002X");
    assert_eq!(mask("李华", 1, 0), "李*");
    assert_eq!(mask("欧阳娜娜", 1, 1), "欧**娜");
    assert_eq!(mask("1234567", 3, 4), "*******");
    assert_eq!(mask("12", 3, 4), "**");
    assert_eq!(mask("", 3, 4), "");
}

#[test]
fn division_codes_cut_to_province_and_prefecture() {
    let doc = doc(
        json!({"code": {"type": "string", "x-classification": "core"}}),
        Some(json!({
            "province": {"from": "code", "rule": "division", "level": "province", "x-classification": "internal"},
            "prefecture": {"from": "code", "rule": "division", "level": "prefecture", "x-classification": "internal"}
        })),
    );
    let s = CredentialSchema::parse(&doc).unwrap();
    let plan = s
        .plan(&obj(json!({"code": "440305"})), date(2026, 1, 1))
        .unwrap();
    assert_eq!(
        Value::Object(plan.to_claims()),
        json!({"province": "440000", "prefecture": "440300"})
    );
    assert!(matches!(
        s.plan(&obj(json!({"code": "4403"})), date(2026, 1, 1)),
        Err(ClaimsError::Derive { .. })
    ));
}

// --- check digits ----------------------------------------------------------------------

/// GB 11643 by its weight table (an implementation independent of `mod11_2_check`).
fn gb11643_by_weights(first17: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    C[(sum % 11) as usize]
}

/// GB 32100 by its published weight table (independent of the 3^i computation).
fn gb32100_by_weights(first17: &str) -> char {
    const W: [usize; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let sum: usize = first17
        .chars()
        .zip(W)
        .map(|(c, w)| GB32100_ALPHABET.find(c).unwrap() * w)
        .sum();
    GB32100_ALPHABET.chars().nth((31 - sum % 31) % 31).unwrap()
}

#[test]
fn gb11643_accepts_published_and_independently_computed_numbers() {
    // The standard's own example, and numbers whose check characters were computed with
    // Python (sum of digit × 2^(17−i) mod 11 → "10X98765432").
    for valid in [
        "11010519491231002X",
        "310115199003071239",
        "310115200604120046",
        "310104195602290831",
        "44030519840229001X",
    ] {
        assert_eq!(check_gb11643(valid), Ok(()), "{valid}");
        assert_eq!(
            gb11643_by_weights(&valid[..17]),
            valid.chars().last().unwrap()
        );
    }
    // The two formulations agree on every check character over a spread of inputs.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let digits = format!("{:017}", seed % 100_000_000_000_000_000);
        assert_eq!(
            mod11_2_check(&digits),
            Some(gb11643_by_weights(&digits)),
            "{digits}"
        );
    }
}

#[test]
fn gb11643_refuses_invalid_numbers() {
    let valid = "11010519491231002X";
    for c in "0123456789".chars() {
        let changed = format!("{}{c}", &valid[..17]);
        assert_eq!(
            check_gb11643(&changed),
            Err(CheckDigitError::CheckCharacter {
                standard: "GB 11643 (ISO 7064 MOD 11-2)"
            }),
            "{changed}"
        );
    }
    // A single changed digit is always caught.
    for i in 0..17 {
        let mut bytes = valid.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'9' { b'0' } else { bytes[i] + 1 };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(check_gb11643(&changed).is_err(), "{changed}");
    }
    assert_eq!(
        check_gb11643("11010519491231002x"),
        Err(CheckDigitError::Character {
            position: 18,
            expected: "a digit or X"
        })
    );
    assert_eq!(
        check_gb11643("1101051949123100"),
        Err(CheckDigitError::Length {
            expected: 18,
            found: 16
        })
    );
    assert!(matches!(
        check_gb11643("1101051949A231002X"),
        Err(CheckDigitError::Character { position: 11, .. })
    ));
    // 31 February, with a check character that is right for the digits.
    let first17 = "11010519490231002";
    let number = format!("{first17}{}", gb11643_by_weights(first17));
    assert_eq!(check_gb11643(&number), Err(CheckDigitError::BirthDate));
    assert!(check_gb11643("１１０１０５１９４９１２３１００２X").is_err());
}

#[test]
fn gb32100_accepts_published_and_independently_computed_codes() {
    // A commonly cited valid code, and the BusinessLicense example (computed with Python).
    for valid in ["91350100M000100Y43", "91310115MA1H3K2P2P"] {
        assert_eq!(check_gb32100(valid), Ok(()), "{valid}");
        assert_eq!(
            gb32100_by_weights(&valid[..17]),
            valid.chars().last().unwrap()
        );
    }
    let alphabet: Vec<char> = GB32100_ALPHABET.chars().collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut s = seed;
        let mut first17 = String::from("91");
        first17.push_str(&format!("{:06}", s % 1_000_000));
        for _ in 0..9 {
            s = s.rotate_left(5) ^ 0x5bd1_e995;
            first17.push(alphabet[(s % 31) as usize]);
        }
        let code = format!("{first17}{}", gb32100_by_weights(&first17));
        assert_eq!(check_gb32100(&code), Ok(()), "{code}");
    }
}

#[test]
fn gb32100_refuses_invalid_codes() {
    let valid = "91350100M000100Y43";
    for c in GB32100_ALPHABET.chars().filter(|c| *c != '3') {
        let changed = format!("{}{c}", &valid[..17]);
        assert_eq!(
            check_gb32100(&changed),
            Err(CheckDigitError::CheckCharacter {
                standard: "GB 32100 (MOD 31)"
            }),
            "{changed}"
        );
    }
    for letter in ["I", "O", "S", "V", "Z", "a"] {
        let changed = format!("91350100M000100{letter}43");
        assert!(
            matches!(
                check_gb32100(&changed),
                Err(CheckDigitError::Character { position: 16, .. })
            ),
            "{changed}"
        );
    }
    assert!(matches!(
        check_gb32100("9135A100M000100Y43"),
        Err(CheckDigitError::Character { position: 5, .. })
    ));
    assert!(matches!(
        check_gb32100("01350100M000100Y43"),
        Err(CheckDigitError::Character { position: 1, .. })
    ));
    assert_eq!(
        check_gb32100("91350100M000100Y4"),
        Err(CheckDigitError::Length {
            expected: 18,
            found: 17
        })
    );
}

#[test]
fn claim_checks_report_every_failure_with_its_pointer() {
    let s = schema("ResidentIdentity");
    let mut claims = example("ResidentIdentity");
    claims.insert("identity_number".into(), json!("310115199003071238"));
    let violations = validate_claim_checks(&s, &claims);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/identity_number");
    assert!(violations[0].message.contains("GB 11643"));
    assert!(!violations[0].message.contains("3101151990"));

    // A valid number whose birth date disagrees with birth_date.
    let mut claims = example("ResidentIdentity");
    claims.insert("birth_date".into(), json!("1990-03-08"));
    let violations = validate_claim_checks(&s, &claims);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/identity_number");
    assert!(violations[0].message.contains("birth_date"));

    // Values of the wrong type are left to schema validation.
    let mut claims = example("ResidentIdentity");
    claims.insert("identity_number".into(), json!(310115199003071239u64));
    assert_eq!(validate_claim_checks(&s, &claims), []);

    let b = schema("BusinessLicense");
    let mut claims = example("BusinessLicense");
    claims.insert(
        "unified_social_credit_code".into(),
        json!("91310115MA1H3K2P2Q"),
    );
    let violations = validate_claim_checks(&b, &claims);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].path, "/unified_social_credit_code");
}

#[test]
fn claim_checks_reach_nested_members_and_array_elements() {
    let doc = doc(
        json!({
            "people": {"type": "array", "x-classification": "sensitive", "items": {
                "type": "object", "additionalProperties": false, "x-classification": "sensitive",
                "properties": {"id": {"type": "string", "x-check": "gb11643", "x-classification": "sensitive"}}
            }}
        }),
        None,
    );
    let s = CredentialSchema::parse(&doc).unwrap();
    let claims = obj(json!({"people": [
        {"id": "11010519491231002X"}, {"id": "110105194912310021"}, {"id": "310115199003071239"}
    ]}));
    let violations = validate_claim_checks(&s, &claims);
    let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["/people/1/id"]);
}

// --- integrity -------------------------------------------------------------------------

#[test]
fn integrity_is_the_sri_of_the_exact_bytes() {
    let s = CredentialSchema::parse(MINIMAL.as_bytes()).unwrap();
    assert_eq!(s.integrity(), MINIMAL_SRI);
    assert_eq!(s.check_integrity(MINIMAL_SRI), Ok(()));
    // The same JSON with other bytes is another schema version.
    let spaced = MINIMAL.replace(",\"type\"", ", \"type\"");
    let other = CredentialSchema::parse(spaced.as_bytes()).unwrap();
    assert_ne!(other.integrity(), MINIMAL_SRI);
    assert_eq!(
        other.check_integrity(MINIMAL_SRI),
        Err(IntegrityError::Mismatch {
            expected: other.integrity(),
            found: MINIMAL_SRI.into()
        })
    );
    for bad in [
        "",
        "sha256-",
        "sha384-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs=",
        "sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs",
        "sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJ",
        " sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs=",
        "sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs= sha256-gYBBHHGj0riSh7yM0lnmKXklcIUjSjv7SuiXEKeJVcs=",
    ] {
        assert!(
            matches!(s.check_integrity(bad), Err(IntegrityError::Malformed(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        IntegrityError::Malformed(String::new()).problem(),
        problem::VCT_INTEGRITY_MISMATCH
    );
}

#[test]
fn workspace_schemas_pin_their_own_bytes() {
    let set = set();
    let mut url_safe_refused = 0;
    for (_, s) in set.iter() {
        assert_eq!(s.check_integrity(&s.integrity()), Ok(()));
        let url_safe = s.integrity().replace('+', "-").replace('/', "_");
        if url_safe != s.integrity() {
            assert!(matches!(
                s.check_integrity(&url_safe),
                Err(IntegrityError::Malformed(_))
            ));
            url_safe_refused += 1;
        }
        for (_, other) in set.iter().filter(|(_, o)| o.vct() != s.vct()) {
            assert!(s.check_integrity(&other.integrity()).is_err());
        }
    }
    assert!(url_safe_refused > 0, "no schema digest has + or /");
}

// --- parse refusals -------------------------------------------------------------------

#[test]
fn parse_refuses_claims_without_classification_at_any_depth() {
    assert_eq!(
        parse_err(json!({"name": {"type": "string"}}), None),
        SchemaError::MissingClassification("name".into())
    );
    assert_eq!(
        parse_err(
            json!({"a": {"type": "object", "additionalProperties": false, "x-classification": "public",
                   "properties": {"b": {"type": "string"}}}}),
            None
        ),
        SchemaError::MissingClassification("a.b".into())
    );
    assert_eq!(
        parse_err(
            json!({"a": {"type": "array", "x-classification": "internal", "items": {"type": "string"}}}),
            None
        ),
        SchemaError::MissingClassification("a[]".into())
    );
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "string", "x-classification": "secret"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
}

#[test]
fn parse_refuses_schemas_whose_claims_could_escape_classification() {
    assert_eq!(
        parse_err(
            json!({"a": {"type": "object", "x-classification": "public", "properties": {}}}),
            None
        ),
        SchemaError::OpenObject("a".into())
    );
    let mut open = serde_json::from_slice::<Value>(&doc(json!({}), None)).unwrap();
    open.as_object_mut().unwrap().remove("additionalProperties");
    assert_eq!(
        CredentialSchema::parse(&serde_json::to_vec(&open).unwrap()).unwrap_err(),
        SchemaError::OpenObject("(schema)".into())
    );
    assert_eq!(
        parse_err(
            json!({"a": {"$ref": "#/$defs/x", "x-classification": "public"}}),
            None
        ),
        SchemaError::Unsupported {
            claim: "a".into(),
            keyword: "$ref"
        }
    );
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "array", "x-classification": "public",
                   "prefixItems": [{"type": "string"}], "items": {"type": "string", "x-classification": "public"}}}),
            None
        ),
        SchemaError::Unsupported {
            keyword: "prefixItems",
            ..
        }
    ));
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "array", "x-classification": "public"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
    assert!(matches!(
        parse_err(
            json!({"a": {"x-classification": "public", "properties": {"b": {"type": "string", "x-classification": "public"}}}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
    assert_eq!(
        parse_err(
            json!({"a": {"type": "object", "additionalProperties": false, "x-classification": "internal",
                   "properties": {"b": {"type": "string", "x-classification": "public"}}}}),
            None
        ),
        SchemaError::BelowContainer {
            claim: "a.b".into(),
            member: Classification::Public,
            container: Classification::Internal
        }
    );
}

#[test]
fn parse_refuses_bad_names_dialects_and_vcts() {
    assert_eq!(
        parse_err(
            json!({"iss": {"type": "string", "x-classification": "public"}}),
            None
        ),
        SchemaError::ClaimName("iss".into())
    );
    assert_eq!(
        parse_err(
            json!({"birthDate": {"type": "string", "x-classification": "public"}}),
            None
        ),
        SchemaError::ClaimName("birthDate".into())
    );
    let mut d = serde_json::from_slice::<Value>(MINIMAL.as_bytes()).unwrap();
    d["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    assert!(matches!(
        CredentialSchema::parse(&serde_json::to_vec(&d).unwrap()),
        Err(SchemaError::Dialect(_))
    ));
    for vct in [
        json!("ResidentIdentity"),
        json!(""),
        json!("https://x/ y"),
        json!(7),
    ] {
        let mut d = serde_json::from_slice::<Value>(MINIMAL.as_bytes()).unwrap();
        d["vct"] = vct.clone();
        assert!(
            matches!(
                CredentialSchema::parse(&serde_json::to_vec(&d).unwrap()),
                Err(SchemaError::Vct(_))
            ),
            "{vct}"
        );
    }
    let mut d = serde_json::from_slice::<Value>(MINIMAL.as_bytes()).unwrap();
    d["x-display"] = json!([{"locale": "en-US", "name": "A"}, {"locale": "en-US", "name": "B"}]);
    assert!(matches!(
        CredentialSchema::parse(&serde_json::to_vec(&d).unwrap()),
        Err(SchemaError::Keyword { .. })
    ));
    assert!(matches!(
        CredentialSchema::parse(b"{\"$schema\": "),
        Err(SchemaError::Json(_))
    ));
    assert_eq!(
        SchemaError::Json(String::new()).problem(),
        problem::INTERNAL
    );
}

#[test]
fn parse_refuses_bad_checks() {
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "integer", "x-check": "gb11643", "x-classification": "core"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "string", "x-check": "luhn", "x-classification": "core"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "string", "x-check": "gb11643", "x-birth-date": "born", "x-classification": "core"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
    assert!(matches!(
        parse_err(
            json!({"a": {"type": "string", "x-birth-date": "a", "x-classification": "core"}}),
            None
        ),
        SchemaError::Keyword { .. }
    ));
}

#[test]
fn parse_refuses_bad_derived_claims() {
    let props = json!({
        "birth": {"type": "string", "format": "date", "x-classification": "core"},
        "list": {"type": "array", "x-classification": "internal",
                 "items": {"type": "string", "x-classification": "internal"}}
    });
    let cases = [
        json!({"birth": {"from": "birth", "rule": "copy", "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "copy", "x-classification": "core"}}),
        json!({"age": {"from": "birth", "rule": "copy"}}),
        json!({"age": {"from": "birth", "rule": "hash", "x-classification": "internal"}}),
        json!({"age": {"from": "missing", "rule": "copy", "x-classification": "internal"}}),
        json!({"age": {"from": "list[]", "rule": "copy", "x-classification": "internal"}}),
        json!({"age": {"from": "list", "rule": "copy", "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "age-at-least", "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "age-at-least", "years": 0, "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "age-at-least", "years": 18, "keep-start": 1, "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "mask", "keep-start": 3, "x-classification": "internal"}}),
        json!({"age": {"from": "birth", "rule": "division", "level": "county", "x-classification": "internal"}}),
        json!({"Age": {"from": "birth", "rule": "copy", "x-classification": "internal"}}),
        json!({"sub": {"from": "birth", "rule": "copy", "x-classification": "internal"}}),
        json!(["age"]),
    ];
    for case in cases {
        let err = parse_err(props.clone(), Some(case.clone()));
        assert!(
            matches!(
                err,
                SchemaError::Derived { .. }
                    | SchemaError::ClaimName(_)
                    | SchemaError::Keyword { .. }
                    | SchemaError::MissingClassification(_)
            ),
            "{case}: {err}"
        );
    }
    let ok = json!({"age": {"from": "birth", "rule": "age-at-least", "years": 18, "x-classification": "internal"}});
    assert!(CredentialSchema::parse(&doc(props, Some(ok))).is_ok());
}

// --- claim paths and sets ----------------------------------------------------------------

#[test]
fn claim_paths_round_trip_text_and_json() {
    for (text, json) in [
        ("name", json!(["name"])),
        ("address.region_code", json!(["address", "region_code"])),
        ("courses[].grade", json!(["courses", null, "grade"])),
        ("courses[2].grade", json!(["courses", 2, "grade"])),
        ("matrix[][0]", json!(["matrix", null, 0])),
    ] {
        let p: ClaimPath = text.parse().unwrap();
        assert_eq!(p.to_string(), text);
        assert_eq!(serde_json::to_value(&p).unwrap(), json);
        assert_eq!(serde_json::from_value::<ClaimPath>(json).unwrap(), p);
    }
    for bad in [
        "", "a..b", ".a", "a.", "a[", "a]", "a[01]", "a[x]", "A", "a[]b", "[]", "a b",
    ] {
        assert!(bad.parse::<ClaimPath>().is_err(), "{bad:?}");
    }
    for bad in [
        json!([]),
        json!([null]),
        json!([1, "a"]),
        json!(["a", -1]),
        json!(["a", true]),
    ] {
        assert!(
            serde_json::from_value::<ClaimPath>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn schema_sets_refuse_bad_names_and_duplicates() {
    let set = SchemaSet::from_files([("Member.schema.json", MINIMAL.as_bytes())]).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.by_vct("urn:example:vct:member").is_some());
    assert!(set.by_type("Member").is_some());
    assert!(set.by_type("member").is_none());
    for name in [
        "member.schema.json",
        "Member.json",
        "Member.schema.json.bak",
        ".schema.json",
    ] {
        assert!(
            matches!(
                SchemaSet::from_files([(name, MINIMAL.as_bytes())]),
                Err(SchemaError::FileName(_))
            ),
            "{name}"
        );
    }
    assert_eq!(
        SchemaSet::from_files([
            ("Member.schema.json", MINIMAL.as_bytes()),
            ("Other.schema.json", MINIMAL.as_bytes())
        ])
        .unwrap_err(),
        SchemaError::Duplicate("vct urn:example:vct:member".into())
    );
    let err = SchemaSet::from_files([("Broken.schema.json", &b"[]"[..])]).unwrap_err();
    assert!(matches!(err, SchemaError::InFile { ref file, .. } if file == "Broken.schema.json"));
    assert!(
        SchemaSet::from_files(Vec::<(String, Vec<u8>)>::new())
            .unwrap()
            .is_empty()
    );
}
