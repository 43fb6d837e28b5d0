//! The fleet's admin API client against a real server: log in, create merchants, provision the
//! payment keys once, read a device's state; wrong credentials and API keys without the needed
//! scope get the server's typed refusals.

use terminal::fleet::admin::{AdminClient, AdminCredentials};

use crate::{admin_client, local_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_keys_once_and_reports_typed_refusals() {
    let server = local_server(&[]);
    let admin = admin_client(&server.base);
    admin.authenticate().await.expect("admin logs in");

    let merchant = admin
        .create_merchant("Fleet Test Shop")
        .await
        .expect("merchant");
    assert_eq!(merchant.len(), 36, "a UUID: {merchant}");
    let taken = admin.create_merchant("Fleet Test Shop").await.unwrap_err();
    assert_eq!(taken.status, 409, "{taken}");

    // A fresh server has no keys: both are created, active; a second call changes nothing.
    assert_eq!(admin.ensure_payment_keys().await.unwrap(), ["bdk", "zpk"]);
    assert!(admin.ensure_payment_keys().await.unwrap().is_empty());
    let bdks = admin.keys("bdk").await.unwrap();
    assert_eq!(bdks.len(), 1);
    assert_eq!(
        (bdks[0].state.as_str(), bdks[0].algorithm.as_str()),
        ("ACTIVE", "aes128")
    );
    let zpks = admin.keys("zpk").await.unwrap();
    assert_eq!(zpks[0].processor.as_deref(), Some("issuer-sim"));

    let missing = admin
        .device_state("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!((missing.status, missing.code.as_str()), (404, "not_found"));

    let wrong = AdminClient::new(
        &server.base,
        AdminCredentials::Password {
            username: "admin".to_owned(),
            password: "not-the-password".to_owned(),
        },
    )
    .unwrap();
    let refused = wrong.authenticate().await.unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (401, "invalid_credentials")
    );

    // An API key reaches what its scopes cover: merchants and device reads here, not approvals.
    let secret = admin
        .create_api_key("fleet", &["merchants:write", "devices:read"])
        .await
        .unwrap();
    let integration = AdminClient::new(&server.base, AdminCredentials::ApiKey(secret)).unwrap();
    integration.authenticate().await.expect("the key works");
    integration
        .create_merchant("Fleet Shop 2")
        .await
        .expect("merchant by API key");
    let refused = integration
        .approve_device("00000000-0000-4000-8000-000000000000", "fleet")
        .await
        .unwrap_err();
    assert_eq!((refused.status, refused.code.as_str()), (403, "forbidden"));
    // With `devices:approve` the call gets through to the device (none here), and key
    // custody stays with people whatever the scopes.
    let approver = AdminClient::new(
        &server.base,
        AdminCredentials::ApiKey(
            admin
                .create_api_key("approver", &["devices:read", "devices:approve"])
                .await
                .unwrap(),
        ),
    )
    .unwrap();
    let missing = approver
        .approve_device("00000000-0000-4000-8000-000000000000", "fleet")
        .await
        .unwrap_err();
    assert_eq!((missing.status, missing.code.as_str()), (404, "not_found"));
    let refused = approver.keys("bdk").await.unwrap_err();
    assert_eq!((refused.status, refused.code.as_str()), (403, "forbidden"));

    let bogus_key = AdminClient::new(
        &server.base,
        AdminCredentials::ApiKey("sbk_nope".to_owned()),
    )
    .unwrap();
    let refused = bogus_key.create_merchant("Nope").await.unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (401, "unauthorized")
    );
}
