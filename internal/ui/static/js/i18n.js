// English and Simplified Chinese. The language comes from the browser
// (navigator.language) unless the user picked one with the switch; that
// choice (not a secret) is kept in localStorage.
const en = {
  'nav.overview': 'Overview', 'nav.logs': 'Logs', 'nav.keys': 'Keys', 'nav.upstreams': 'Upstreams', 'nav.playground': 'Playground',
  'logout': 'Sign out', 'role.admin': 'Admin', 'role.key': 'Key',
  'login.as_admin': 'Admin', 'login.as_key': 'Key holder', 'login.admin_token': 'Admin token (TOLLGATE_ADMIN_TOKEN)',
  'login.gateway_key': 'Gateway key', 'login.sign_in': 'Sign in', 'login.expired': 'Your session ended; sign in again.',
  'loading': 'Loading…', 'updated': 'Updated', 'auto_refresh': 'Auto-refresh', 'range': 'Range', 'group_by': 'Group by',
  'range.15m': 'Last 15 minutes', 'range.1h': 'Last hour', 'range.24h': 'Last 24 hours', 'range.7d': 'Last 7 days', 'range.30d': 'Last 30 days', 'range.custom': 'Custom',
  'group.model': 'Model', 'group.key': 'Key', 'group.user': 'User', 'group.upstream': 'Upstream',
  'requests': 'Requests', 'errors': 'Errors', 'error_rate': 'Error rate', 'cost': 'Cost',
  'tokens.input': 'Input tokens', 'tokens.cached': 'Cached tokens', 'tokens.output': 'Output tokens', 'tokens.reasoning': 'Reasoning tokens', 'tokens.total': 'Total tokens',
  'latency': 'Latency', 'latency.p50': 'Latency p50', 'latency.p95': 'Latency p95', 'latency.ttft': 'Time to first token (mean)', 'axis.right': '→ right axis',
  'chart.requests': 'Requests and errors', 'chart.tokens': 'Tokens', 'chart.cost': 'Cost ({0})', 'chart.latency': 'Latency and time to first token (ms)',
  'breakdown': 'Breakdown', 'top_spenders': 'Top spenders', 'budgets': 'Spend against budgets', 'no_budgets': 'No key has a budget.',
  'unpriced_note': '{0} requests have no price; their cost is not counted.',
  'key': 'Key', 'status': 'Status', 'spent': 'Spent this period', 'budget': 'Budget', 'remaining': 'Remaining', 'my_key': 'My key',
  'period': 'Period', 'period.day': 'day', 'period.month': 'month', 'period.total': 'total', 'period.': '',
  'status.active': 'active', 'status.revoked': 'revoked', 'status.expired': 'expired',
  'parallel': 'Parallel', 'models': 'Models', 'all_models': 'all models', 'default': 'default', 'none': 'none', 'never': 'never', 'expires': 'Expires',
  'f.model': 'model', 'f.key': 'key id', 'f.user': 'user', 'f.status': 'status', 'f.upstream': 'upstream', 'f.outcome': 'any outcome', 'f.stream': 'streamed or not',
  'streamed': 'streamed', 'not_streamed': 'not streamed', 'live_tail': 'Live tail', 'export_csv': 'Export CSV', 'load_more': 'Load more', 'no_rows': 'Nothing here.',
  'time': 'Time', 'model': 'Model', 'user': 'User', 'duration': 'Duration', 'ttfb': 'Time to first token', 'upstream': 'Upstream', 'stream': 'Stream',
  'outcome': 'Outcome', 'outcome.ok': 'ok', 'outcome.client_error': 'client error', 'outcome.upstream_error': 'upstream error', 'outcome.timeout': 'timeout',
  'outcome.cancelled': 'cancelled', 'outcome.rate_limited': 'rate limited', 'outcome.unauthorized': 'unauthorized', 'outcome.forbidden': 'forbidden', 'outcome.quota_exceeded': 'over budget',
  'request': 'Request', 'endpoint': 'Endpoint', 'model_used': 'Model used', 'attempts': 'Attempts', 'estimated': 'estimated', 'unpriced': 'no price',
  'client_ip': 'Client IP', 'error': 'Error', 'request_body': 'Request body', 'response_body': 'Response body', 'body_not_stored': 'Not stored (TOLLGATE_LOG_BODIES is off).',
  'keys.create': 'Create key', 'keys.created': 'Key "{0}" created.', 'keys.rotated': 'Key "{0}" rotated.', 'keys.once': 'Copy it now: it is shown only this once.',
  'keys.expires_keep': 'unchanged; or 30d, never', 'name': 'Name', 'prefix': 'Prefix', 'last_used': 'Last used',
  'edit': 'Edit', 'rotate': 'Rotate', 'revoke': 'Revoke', 'confirm_revoke': 'Really revoke?', 'copy': 'Copy', 'copied': 'Copied', 'done': 'Done', 'save': 'Save', 'cancel': 'Cancel',
  'reload_config': 'Reload config', 'reloaded': 'Configuration reloaded', 'state': 'Circuit', 'state.closed': 'healthy', 'state.open': 'open', 'state.half_open': 'probing',
  'until': 'until', 'error_ratio': 'Error ratio', 'in_flight': 'In flight', 'failures': 'Failures', 'last_error': 'Last error',
  'pg.key': 'Gateway key', 'pg.system': 'System prompt (optional)', 'pg.placeholder': 'Ask something… (Ctrl+Enter sends)', 'pg.send': 'Send', 'pg.stop': 'Stop',
  'pg.clear': 'New chat', 'pg.you': 'You', 'pg.last_call': 'Last call', 'pg.request_id': 'Request id', 'pg.models_failed': 'Could not list models',
};

const zh = {
  'nav.overview': '概览', 'nav.logs': '日志', 'nav.keys': '密钥', 'nav.upstreams': '上游', 'nav.playground': '试用',
  'logout': '退出登录', 'role.admin': '管理员', 'role.key': '密钥',
  'login.as_admin': '管理员', 'login.as_key': '密钥持有者', 'login.admin_token': '管理令牌（TOLLGATE_ADMIN_TOKEN）',
  'login.gateway_key': '网关密钥', 'login.sign_in': '登录', 'login.expired': '会话已结束，请重新登录。',
  'loading': '加载中…', 'updated': '更新于', 'auto_refresh': '自动刷新', 'range': '时间范围', 'group_by': '分组',
  'range.15m': '最近 15 分钟', 'range.1h': '最近 1 小时', 'range.24h': '最近 24 小时', 'range.7d': '最近 7 天', 'range.30d': '最近 30 天', 'range.custom': '自定义',
  'group.model': '模型', 'group.key': '密钥', 'group.user': '用户', 'group.upstream': '上游',
  'requests': '请求数', 'errors': '错误数', 'error_rate': '错误率', 'cost': '费用',
  'tokens.input': '输入 token', 'tokens.cached': '缓存 token', 'tokens.output': '输出 token', 'tokens.reasoning': '推理 token', 'tokens.total': '总 token',
  'latency': '延迟', 'latency.p50': '延迟 p50', 'latency.p95': '延迟 p95', 'latency.ttft': '首 token 时间（均值）', 'axis.right': '→ 右轴',
  'chart.requests': '请求与错误', 'chart.tokens': 'Token 用量', 'chart.cost': '费用（{0}）', 'chart.latency': '延迟与首 token 时间（毫秒）',
  'breakdown': '明细', 'top_spenders': '花费最多', 'budgets': '预算使用情况', 'no_budgets': '没有设置预算的密钥。',
  'unpriced_note': '{0} 个请求没有价格，费用未计入。',
  'key': '密钥', 'status': '状态', 'spent': '本周期花费', 'budget': '预算', 'remaining': '剩余', 'my_key': '我的密钥',
  'period': '周期', 'period.day': '天', 'period.month': '月', 'period.total': '总计', 'period.': '',
  'status.active': '有效', 'status.revoked': '已吊销', 'status.expired': '已过期',
  'parallel': '并发', 'models': '模型', 'all_models': '全部模型', 'default': '默认', 'none': '无', 'never': '从不', 'expires': '过期时间',
  'f.model': '模型', 'f.key': '密钥 id', 'f.user': '用户', 'f.status': '状态码', 'f.upstream': '上游', 'f.outcome': '全部结果', 'f.stream': '流式与否',
  'streamed': '流式', 'not_streamed': '非流式', 'live_tail': '实时跟踪', 'export_csv': '导出 CSV', 'load_more': '加载更多', 'no_rows': '暂无数据。',
  'time': '时间', 'model': '模型', 'user': '用户', 'duration': '耗时', 'ttfb': '首 token 时间', 'upstream': '上游', 'stream': '流式',
  'outcome': '结果', 'outcome.ok': '成功', 'outcome.client_error': '客户端错误', 'outcome.upstream_error': '上游错误', 'outcome.timeout': '超时',
  'outcome.cancelled': '已取消', 'outcome.rate_limited': '被限流', 'outcome.unauthorized': '未授权', 'outcome.forbidden': '被禁止', 'outcome.quota_exceeded': '超出预算',
  'request': '请求', 'endpoint': '接口', 'model_used': '实际模型', 'attempts': '尝试次数', 'estimated': '估算', 'unpriced': '无价格',
  'client_ip': '客户端 IP', 'error': '错误', 'request_body': '请求体', 'response_body': '响应体', 'body_not_stored': '未保存（TOLLGATE_LOG_BODIES 未开启）。',
  'keys.create': '创建密钥', 'keys.created': '已创建密钥“{0}”。', 'keys.rotated': '已轮换密钥“{0}”。', 'keys.once': '请立即复制：它只显示这一次。',
  'keys.expires_keep': '不变；或 30d、never', 'name': '名称', 'prefix': '前缀', 'last_used': '最近使用',
  'edit': '编辑', 'rotate': '轮换', 'revoke': '吊销', 'confirm_revoke': '确认吊销？', 'copy': '复制', 'copied': '已复制', 'done': '完成', 'save': '保存', 'cancel': '取消',
  'reload_config': '重新加载配置', 'reloaded': '配置已重新加载', 'state': '熔断状态', 'state.closed': '健康', 'state.open': '熔断', 'state.half_open': '探测中',
  'until': '直到', 'error_ratio': '错误比例', 'in_flight': '进行中', 'failures': '失败数', 'last_error': '最近错误',
  'pg.key': '网关密钥', 'pg.system': '系统提示词（可选）', 'pg.placeholder': '输入问题…（Ctrl+Enter 发送）', 'pg.send': '发送', 'pg.stop': '停止',
  'pg.clear': '新对话', 'pg.you': '你', 'pg.last_call': '上次调用', 'pg.request_id': '请求 id', 'pg.models_failed': '无法获取模型列表',
};

const dicts = { en, 'zh-CN': zh };
export const langs = [{ id: 'en', name: 'English' }, { id: 'zh-CN', name: '简体中文' }];

function detect() {
  let saved = null;
  try { saved = localStorage.getItem('tollgate.lang'); } catch { /* storage may be off */ }
  if (saved && dicts[saved]) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

let cur = detect();
export const lang = () => cur;
export function setLang(l) {
  if (!dicts[l]) return;
  cur = l;
  document.documentElement.lang = l;
  try { localStorage.setItem('tollgate.lang', l); } catch { /* ignore */ }
}

// t looks a message up, falling back to English, then to the key itself;
// {0}, {1}… are replaced by args.
export function t(key, ...args) {
  let s = dicts[cur][key] ?? en[key] ?? key;
  args.forEach((a, i) => { s = s.replace('{' + i + '}', a); });
  return s;
}
