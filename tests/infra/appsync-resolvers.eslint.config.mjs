// Lints APPSYNC_JS resolver code with the AppSync plugin's base rules (what the runtime rejects:
// async, classes, while/for(;;), try/catch, regex literals, `this`, ...). Used by test_appsync_js.py.
import appsync from '@aws-appsync/eslint-plugin';

export default [
  {
    ...appsync.configs.base,
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
  },
];
