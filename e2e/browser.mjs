// What a data engineer does in the Airflow UI, in Debian's headless Chromium, driven by playwright-core.
// Started by e2e/run.py, which starts Airflow and the VVP emulator and passes everything in E2E_* variables.
// Exits non-zero with the failing step's name and a screenshot of the page at that moment.
import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import path from 'node:path';

const STEP_TIMEOUT_MS = 30_000;
const DAG_RUN_TIMEOUT_MS = 300_000;
// The watcher's polls fail until the connection exists, the wait between them growing to 8 polls.
const WATCHER_TIMEOUT_MS = 180_000;
const WATERMARK_VARIABLE_PREFIX = 'flink_vvp.job_status_watermark.';
const POLL_INTERVAL_MS = 2_000;
const CONNECTION_ID = 'flink_vvp_default';
const CONNECTION_TYPE = 'Flink VVP (Alibaba Cloud Realtime Compute)';
const LINK_NAME = 'Flink VVP deployment';
const WRONG_SECRET = 'not-the-secret-of-this-access-key';
const PAGE_VIEWPORT = { width: 1280, height: 800 };
const FORM_VIEWPORT = { width: 1280, height: 1500 };

function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run e2e/run.py, not this script)`);
  return value;
}

const config = {
  chromium: setting('E2E_CHROMIUM'),
  baseUrl: setting('E2E_BASE_URL'),
  adminPassword: setting('E2E_ADMIN_PASSWORD'),
  emulatorUrl: setting('E2E_EMULATOR_URL'),
  accessKeyId: setting('E2E_ACCESS_KEY_ID'),
  accessKeySecret: setting('E2E_ACCESS_KEY_SECRET'),
  workspace: setting('E2E_WORKSPACE'),
  namespace: setting('E2E_NAMESPACE'),
  dagId: setting('E2E_DAG_ID'),
  sensorTaskId: setting('E2E_SENSOR_TASK_ID'),
  expectedLink: setting('E2E_EXPECTED_LINK'),
  deploymentId: setting('E2E_DEPLOYMENT_ID'),
  watcherDagId: setting('E2E_WATCHER_DAG_ID'),
  assetUri: setting('E2E_ASSET_URI'),
  screenshotsDir: setting('E2E_SCREENSHOTS_DIR'),
  failureDir: setting('E2E_FAILURE_DIR'),
};

let currentStep = 'starting Chromium';

function step(name) {
  currentStep = name;
  console.log(`[browser] ${name}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function screenshot(target, name) {
  await fs.mkdir(config.screenshotsDir, { recursive: true });
  const file = path.join(config.screenshotsDir, name);
  await target.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
  console.log(`[browser]   saved ${path.relative(process.cwd(), file)}`);
}

// Airflow <= 3.3.2 answers 400 "The host or port to test differs from the stored connection" to the
// Test button of any connection without a port: the UI posts port 0 (Number(null)) and the API
// compares it with the stored NULL (apache/airflow#73298, fixed after 3.3.2). Our connection has
// no port, so the request is sent as the fixed UI would send it; nothing else is changed.
async function workAroundPortZero(page) {
  await page.route('**/api/v2/connections/test', async (route) => {
    const body = JSON.parse(route.request().postData() ?? '{}');
    if (body.port === 0) body.port = null;
    await route.continue({ postData: JSON.stringify(body) });
  });
}

async function logIn(page) {
  step('1. log in');
  await page.goto(`${config.baseUrl}/`);
  await page.locator('input[name=username]').fill('admin');
  await page.locator('input[name=password]').fill(config.adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/auth'));
}

async function expectLabels(scope, labels) {
  for (const label of labels) {
    const count = await scope.locator('label').filter({ hasText: label }).count();
    check(count > 0, `the connection form has no field labelled ${JSON.stringify(label)}`);
  }
}

async function expectMasked(input, field) {
  const type = await input.getAttribute('type');
  check(type === 'password', `${field} is not masked (input type ${JSON.stringify(type)})`);
}

async function createConnection(page) {
  step('1. create a "Flink VVP" connection through the form');
  await page.setViewportSize(FORM_VIEWPORT); // the whole dialog in its screenshots
  await page.goto(`${config.baseUrl}/connections`);
  await page.getByRole('button', { name: 'Add Connection' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.locator('input[name=connection_id]').fill(CONNECTION_ID);
  await dialog.getByLabel('Connection Type').fill('Flink VVP');
  await page.getByRole('option', { name: CONNECTION_TYPE }).click();

  await expectLabels(dialog, ['Endpoint', 'AccessKey ID', 'AccessKey Secret']);
  const password = dialog.locator('input[name=password]');
  await expectMasked(password, 'AccessKey Secret');
  check((await dialog.locator('input[name=port]').count()) === 0, 'the hidden field "port" is shown');
  await dialog.locator('input[name=host]').fill(config.emulatorUrl);
  await dialog.locator('input[name=login]').fill(config.accessKeyId);
  await password.fill(WRONG_SECRET); // the first Test must show the API's error
  await screenshot(dialog, '01-connection-form.png');

  await dialog.getByRole('button', { name: 'Extra Fields', exact: true }).click();
  await expectLabels(dialog, ['Region', 'Workspace ID', 'Namespace', 'STS security token', 'Console URL template']);
  await expectMasked(dialog.locator('input[name=element_security_token]'), 'STS security token');
  await dialog.locator('input[name=element_workspace]').fill(config.workspace);
  await dialog.locator('input[name=element_namespace]').fill(config.namespace);
  await screenshot(dialog, '02-connection-form-extra-fields.png');

  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.setViewportSize(PAGE_VIEWPORT);
  await connectionRow(page).waitFor();
  await dismissToasts(page);
}

// A toast under the mouse stays; move away and let the earlier ones go, so each screenshot shows one answer.
async function dismissToasts(page) {
  await page.mouse.move(5, 5);
  await page.waitForFunction(() => document.querySelectorAll('[data-scope=toast][data-part=root]').length === 0, null, {
    timeout: 60_000,
  });
}

function connectionRow(page) {
  return page.getByRole('row').filter({ hasText: CONNECTION_ID });
}

async function pressTest(page, expectedText) {
  const row = connectionRow(page);
  await row.getByRole('button', { name: 'Test Connection' }).click();
  const toast = page.locator('[data-scope=toast][data-part=root]').filter({ hasText: expectedText });
  try {
    await toast.first().waitFor();
  } catch {
    const shown = await page.locator('[data-scope=toast][data-part=root]').allInnerTexts();
    throw new Error(`no message containing ${JSON.stringify(expectedText)} after Test; shown: ${JSON.stringify(shown)}`);
  }
  return toast.first();
}

async function testConnection(page) {
  step('2. Test with a wrong secret: the API error code and message');
  const failure = await pressTest(page, 'SignatureDoesNotMatch');
  const failureText = await failure.innerText();
  check(failureText.includes('Test Connection Failed'), `the failure is not titled as one: ${failureText}`);
  check(failureText.includes('signature does not match'), `the API's message is missing: ${failureText}`);
  await screenshot(page, '03-test-wrong-secret.png');
  await dismissToasts(page);

  step('2. Test with the right secret: the connection works');
  await connectionRow(page).getByRole('button', { name: 'Edit Connection' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.locator('input[name=password]').fill(config.accessKeySecret);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await dismissToasts(page);
  const success = await pressTest(page, `Connected to ${config.emulatorUrl}`);
  const successText = await success.innerText();
  check(successText.includes(`namespace '${config.namespace}'`), `the success names no namespace: ${successText}`);
  await screenshot(page, '04-test-success.png');
}

async function apiToken() {
  const answer = await fetch(`${config.baseUrl}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: config.adminPassword }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  check(answer.ok, `POST /auth/token answered ${answer.status}`);
  return (await answer.json()).access_token;
}

async function api(token, route) {
  const answer = await fetch(`${config.baseUrl}/api/v2${route}`, {
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  check(answer.ok, `GET /api/v2${route} answered ${answer.status}`);
  return answer.json();
}

async function triggerDag(page) {
  step(`3. trigger ${config.dagId}`);
  await page.goto(`${config.baseUrl}/dags/${config.dagId}`);
  await page.getByRole('button', { name: 'Trigger Dag' }).click();
  const dialog = page.getByRole('dialog');
  const created = page.waitForResponse(
    (response) => response.request().method() === 'POST' && response.url().endsWith(`/dags/${config.dagId}/dagRuns`),
  );
  await dialog.getByRole('button', { name: 'Trigger', exact: true }).click();
  const answer = await created;
  check(answer.ok(), `triggering answered ${answer.status()}: ${await answer.text()}`);
  return (await answer.json()).dag_run_id;
}

async function waitForSuccess(token, dagId, runId) {
  step(`wait for run ${runId} of ${dagId} to succeed`);
  const runRoute = `/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}`;
  const deadline = Date.now() + DAG_RUN_TIMEOUT_MS;
  let state = 'unknown';
  while (Date.now() < deadline) {
    state = (await api(token, runRoute)).state;
    if (state === 'success') return;
    if (state === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  const tasks = (await api(token, `${runRoute}/taskInstances`)).task_instances;
  const states = tasks.map((task) => `${task.task_id}=${task.state}`).join(', ');
  throw new Error(`the run ended ${state} (waited at most ${DAG_RUN_TIMEOUT_MS / 1000} s); tasks: ${states}`);
}

async function checkSensorLink(page, token, runId) {
  const runPath = `/dags/${config.dagId}/runs/${encodeURIComponent(runId)}`;
  step('3. the run in the UI');
  await page.goto(`${config.baseUrl}${runPath}`);
  await page.getByText('Success', { exact: true }).first().waitFor();
  await screenshot(page, '05-dag-run-success.png');

  step(`3. the "${LINK_NAME}" link of ${config.sensorTaskId}`);
  const links = await api(token, `/dags/${config.dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${config.sensorTaskId}/links`);
  check(
    links.extra_links?.[LINK_NAME] === config.expectedLink,
    `the API gives the link ${JSON.stringify(links.extra_links)}, expected ${config.expectedLink}`,
  );
  await page.goto(`${config.baseUrl}${runPath}/tasks/${config.sensorTaskId}`);
  // Airflow 3 lists a task's extra links under its Details tab.
  await page.getByRole('link', { name: 'Details', exact: true }).click();
  const link = page.getByRole('link', { name: LINK_NAME, exact: true });
  await link.waitFor();
  const href = await link.getAttribute('href');
  check(href === config.expectedLink, `the link points to ${href}, expected ${config.expectedLink}`);
  await link.hover(); // highlighted in the screenshot
  await screenshot(page, '06-sensor-deployment-link.png');
}

async function emulatorAdmin(route, body) {
  const answer = await fetch(`${config.emulatorUrl}/_emulator${route}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await answer.text();
  check(answer.ok, `${route} of the emulator's admin API answered ${answer.status}: ${text}`);
  return JSON.parse(text);
}

// The first truthy answer of probe(), asked every POLL_INTERVAL_MS.
async function waitUntil(what, probe) {
  const deadline = Date.now() + WATCHER_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const found = await probe();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`no ${what} within ${WATCHER_TIMEOUT_MS / 1000} s`);
}

async function failWatchedJob(token) {
  step(`4. the running job of deployment ${config.deploymentId}`);
  const running = (await emulatorAdmin('/jobs')).jobs.filter(
    (job) => job.deploymentId === config.deploymentId && job.status?.currentJobStatus === 'RUNNING',
  );
  check(running.length === 1, `expected one running job of ${config.deploymentId}, found ${running.length}`);
  const { jobId } = running[0];
  // A job's status before the watcher first listed it is history, not an event: wait until it has.
  step(`4. the asset watcher of ${config.watcherDagId} has seen job ${jobId} running`);
  const pattern = encodeURIComponent(WATERMARK_VARIABLE_PREFIX);
  await waitUntil(`watermark listing job ${jobId}`, async () => {
    const { variables } = await api(token, `/variables?variable_key_pattern=${pattern}`);
    return variables.some((variable) => JSON.parse(variable.value)[config.deploymentId]?.[jobId]?.includes('RUNNING'));
  });
  step(`4. the emulator fails job ${jobId}`);
  await emulatorAdmin(`/jobs/${jobId}/timeline`, { timeline: [['FAILED', null]] });
  return jobId;
}

async function waitForRemediation(token, jobId) {
  step('4. the asset event of the failure');
  const { assets } = await api(token, `/assets?uri_pattern=${encodeURIComponent(config.assetUri)}`);
  const asset = assets.find((candidate) => candidate.uri === config.assetUri);
  check(asset, `no asset ${config.assetUri}; assets: ${JSON.stringify(assets.map((candidate) => candidate.uri))}`);
  const event = await waitUntil(`asset event of job ${jobId}'s failure`, async () => {
    const { asset_events: events } = await api(token, `/assets/events?asset_id=${asset.id}`);
    return events.find((candidate) => candidate.extra?.payload?.job_id === jobId);
  });
  const { payload } = event.extra;
  check(
    payload.status === 'FAILED' && payload.deployment_id === config.deploymentId && payload.failure_reason,
    `the event's payload is not the failure of job ${jobId}: ${JSON.stringify(payload)}`,
  );

  step(`4. the run of ${config.watcherDagId} the event started`);
  const run = await waitUntil(`asset-triggered run of ${config.watcherDagId}`, async () => {
    const { dag_runs: runs } = await api(token, `/dags/${config.watcherDagId}/dagRuns`);
    return runs.find((candidate) => candidate.run_type === 'asset_triggered');
  });
  await waitForSuccess(token, config.watcherDagId, run.dag_run_id);
  const { dag_runs: runs } = await api(token, `/dags/${config.watcherDagId}/dagRuns`);
  check(runs.length === 1, `one failure started ${runs.length} runs of ${config.watcherDagId}`);
  return { assetId: asset.id, runId: run.dag_run_id };
}

async function showRemediation(page, { assetId, runId }) {
  step('4. the asset in the UI: the event of the failure and the run it started');
  await page.goto(`${config.baseUrl}/assets/${assetId}`);
  await page.getByText(config.watcherDagId).first().waitFor();
  await page.waitForLoadState('networkidle'); // the events list too
  await screenshot(page, '07-asset-event-from-job-failure.png');

  step(`4. the run of ${config.watcherDagId} in the UI`);
  const runPath = `/dags/${config.watcherDagId}/runs/${encodeURIComponent(runId)}`;
  await page.goto(`${config.baseUrl}${runPath}`);
  await page.getByText('Success', { exact: true }).first().waitFor();
  await screenshot(page, '08-remediation-dag-run.png');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    timeout: 60_000,
    // Without the networking flags Chromium keeps calling Google's hosts, which this network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let page;
  try {
    const context = await browser.newContext({ viewport: PAGE_VIEWPORT, locale: 'en-US', timezoneId: 'UTC' });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    await workAroundPortZero(page);
    await logIn(page);
    await createConnection(page);
    await testConnection(page);
    const runId = await triggerDag(page);
    const token = await apiToken();
    await waitForSuccess(token, config.dagId, runId);
    await checkSensorLink(page, token, runId);
    const jobId = await failWatchedJob(token);
    const remediation = await waitForRemediation(token, jobId);
    await showRemediation(page, remediation);
  } catch (error) {
    console.error(`[browser] FAILED at "${currentStep}": ${error.message}`);
    if (page) {
      await fs.mkdir(config.failureDir, { recursive: true });
      const file = path.join(config.failureDir, 'failure.png');
      await page.screenshot({ path: file }).catch(() => {});
      console.error(`[browser] page at the failure: ${page.url()} (screenshot ${file})`);
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main();
